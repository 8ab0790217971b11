"""rkctl's KV commands against a real 3-member cluster, compared with etcdctl's output.

Commands run in-process through :func:`raftkube.rkctl.run` inside the cluster's Trio run, with
``StringIO`` streams, so each check sees exactly what a terminal would.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import trio

from raftkube.rkctl import run
from tests.helpers.rkctl import assert_one_error, rkctl_cluster


@pytest.mark.trio
async def test_seed_session_get_flags_json_del_and_compaction(tmp_path: Path) -> None:
    async with rkctl_cluster(tmp_path) as (_cluster, rk):
        # The seed's session, word for word.
        assert await rk("put", "key", "I am a value") == (0, "OK\n", "")
        assert await rk("get", "key") == (0, "key\nI am a value\n", "")
        assert await rk("del", "key") == (0, "1\n", "")
        assert await rk("get", "key") == (0, "", "")

        # A range and its flags.
        for k, v in [("foo", "bar"), ("foo1", "bar1"), ("foo2", "bar2"), ("fop", "x")]:
            assert (await rk("put", k, v))[0] == 0
        assert (await rk("get", "foo", "foo3"))[1] == "foo\nbar\nfoo1\nbar1\nfoo2\nbar2\n"
        assert (await rk("get", "--prefix", "foo"))[1] == "foo\nbar\nfoo1\nbar1\nfoo2\nbar2\n"
        assert (await rk("get", "foo1", "--from-key"))[1] == "foo1\nbar1\nfoo2\nbar2\nfop\nx\n"
        assert (await rk("get", "--prefix", "foo", "--limit", "2"))[1] == "foo\nbar\nfoo1\nbar1\n"
        # etcdctl prints an empty value line even with --keys-only.
        assert (await rk("get", "--prefix", "foo", "--keys-only"))[1] == "foo\n\nfoo1\n\nfoo2\n\n"
        assert (await rk("get", "--prefix", "--print-value-only", "foo"))[1] == (
            "bar\nbar1\nbar2\n"
        )
        code, out, _ = await rk("get", "--prefix", "foo", "--count-only", "-w", "fields")
        assert code == 0 and '"Count" : 3' in out and '"Key"' not in out

        # Global flags are accepted after the command too.
        code, out, _ = await rk("get", "foo", "--write-out=json")
        doc = json.loads(out)
        assert set(doc["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}
        assert doc["header"]["revision"] >= 5 and doc["header"]["raft_term"] >= 1
        assert doc["count"] == 1
        (kv,) = doc["kvs"]
        assert base64.b64decode(kv["key"]) == b"foo"
        assert base64.b64decode(kv["value"]) == b"bar"
        assert kv["version"] == 1 and "lease" not in kv  # zero fields are omitted

        # put --prev-kv prints OK then the previous pair.
        assert (await rk("put", "foo", "baz", "--prev-kv"))[1] == "OK\nfoo\nbar\n"
        # A value from stdin, as etcdctl reads it.
        assert (await rk("put", "piped", stdin="from stdin"))[1] == "OK\n"
        assert (await rk("get", "piped", "--print-value-only"))[1] == "from stdin\n"

        # del --prefix prints the count, --prev-kv the deleted pairs after it.
        assert await rk("del", "--prefix", "foo") == (0, "3\n", "")
        assert (await rk("del", "fop", "--prev-kv"))[1] == "1\nfop\nx\n"
        assert (await rk("del", "nothing"))[1] == "0\n"

        # Compaction, then a read below the compacted revision is one Error line.
        code, out, _ = await rk("get", "piped", "-w", "json")
        rev = json.loads(out)["header"]["revision"]
        assert await rk("compaction", str(rev)) == (0, f"compacted revision {rev}\n", "")
        assert_one_error(
            *await rk("get", "piped", "--rev", "2"),
            "Error: etcdserver: mvcc: required revision has been compacted",
        )
        assert_one_error(
            *await rk("get", "piped", "--rev", str(rev + 1000)),
            "required revision is a future revision",
        )


@pytest.mark.trio
async def test_txn_from_stdin_both_branches(tmp_path: Path) -> None:
    async with rkctl_cluster(tmp_path) as (_cluster, rk):
        assert (await rk("put", "key1", "v1"))[0] == 0

        script = (
            'value("key1") = "v1"\n'
            'mod("key1") > "0"\n'
            "\n"
            'put key1 "overwrote key1"\n'
            "get key1\n"
            "\n"
            'put key1 "created-key1"\n'
            "put key2 'some extra key'\n"
            "\n"
        )
        code, out, err = await rk("txn", stdin=script)
        assert (code, err) == (0, "")
        assert out == "SUCCESS\n\nOK\n\nkey1\noverwrote key1\n"

        # The same input now fails its first compare: the failure branch runs.
        code, out, _ = await rk("txn", stdin=script)
        assert out == "FAILURE\n\nOK\n\nOK\n"
        assert (await rk("get", "key2"))[1] == "key2\nsome extra key\n"

        # Without a trailing blank line, end of input closes the sections.
        code, out, _ = await rk("txn", stdin='version("key2") = "1"\n\ndel key2')
        assert out == "SUCCESS\n\n1\n"

        # Interactive mode prints etcdctl's prompts.
        code, out, _ = await rk("txn", "-i", stdin='create("nope") = "0"\n\nget key1\n\n\n')
        assert out.startswith("compares:\nsuccess requests (get, put, del):\n")
        assert out.endswith("SUCCESS\n\nkey1\ncreated-key1\n")

        # JSON mirrors etcd's oneof wrappers.
        code, out, _ = await rk("txn", "-w", "json", stdin="\nput a b\n\n")
        doc = json.loads(out)
        assert doc["succeeded"] is True
        assert "response_put" in doc["responses"][0]["Response"]

        # Malformed input is one Error line.
        assert_one_error(*await rk("txn", stdin='size("k") = "1"\n\n\n'), "malformed")
        assert_one_error(*await rk("txn", stdin="\nfrob k\n\n"), "invalid txn request")


@pytest.mark.trio
async def test_bad_flags_and_unreachable_cluster(tmp_path: Path) -> None:
    async with rkctl_cluster(tmp_path) as (_cluster, rk):
        code, out, err = await rk("get", "k", "--bogus")
        assert_one_error(code, out, err, "unrecognized arguments: --bogus")
        assert code == 2
        code, out, err = await rk("get")
        assert code == 2 and err.startswith("Error: ")
        code, out, err = await rk("get", "k", "--prefix", "--from-key")
        assert_one_error(code, out, err, "`--prefix` and `--from-key` cannot be set")
        assert_one_error(*await rk("put", "k", "v", "--lease", "xyz"), "expecting ID in Hex")
        assert_one_error(*await rk("get", "k", "-w", "yaml"), "invalid choice")
        assert_one_error(*await rk("get", "k", "-w", "table"), "table is not supported")
        assert_one_error(*await rk("get", "k", "--count-only"), "--count-only is only for")

        # Nothing listening: one Error line within the dial timeout, exit 1.
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()
        out_s, err_s = io.StringIO(), io.StringIO()
        code = await run(
            ["--endpoints", f"127.0.0.1:{port}", "--dial-timeout", "300ms", "get", "k"],
            stdout=out_s,
            stderr=err_s,
        )
        assert_one_error(code, out_s.getvalue(), err_s.getvalue(), "unavailable")
        assert code == 1
