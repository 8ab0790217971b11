"""The authenticated identity a request carries through authorization and admission."""

from __future__ import annotations

import attrs

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"
SERVICE_ACCOUNTS = "system:serviceaccounts"
NODES = "system:nodes"


@attrs.frozen
class UserInfo:
    """As ``k8s.io/apiserver/pkg/authentication/user.Info``: a name, a uid (service accounts
    carry theirs), groups, and extra attributes (for service-account tokens, the pod they are
    bound to, as ``authentication.kubernetes.io/pod-name``)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The ``userInfo`` of a SelfSubjectReview's status."""
        out: dict[str, object] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out
