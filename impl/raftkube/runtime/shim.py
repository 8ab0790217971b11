"""The process runtime's per-container shim, as containerd's shim: ``python -m
raftkube.runtime.shim EXIT_FILE LOG_FILE -- COMMAND...``.

It is the leader of the container's process group (the runtime starts it with
``start_new_session``) and outlives the kubelet, so a restarted kubelet still learns how a
container it did not start ended: the shim waits for the command and writes its exit code
(128 + signal for a signalled one, as a shell reports it) to ``EXIT_FILE``. A SIGTERM sent to
the group reaches the command directly; the shim only keeps waiting for it (its handler does
nothing, and a handler, unlike an ignored signal, is not inherited across exec). A command
that cannot be executed exits 127 with the reason in the log, as a shell does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def _write_exit(path: str, code: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        out.write(f"{code}\n")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    exit_file, log_file, separator, *command = argv
    if separator != "--" or not command:
        print("usage: shim EXIT_FILE LOG_FILE -- COMMAND...", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with open(log_file, "ab", buffering=0) as log:
        try:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        except OSError as exc:
            log.write(f"exec: {command[0]!r}: {exc.strerror}\n".encode())
            _write_exit(exit_file, 127)
            return 127
        code = child.wait()
    code = 128 - code if code < 0 else code
    _write_exit(exit_file, code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
