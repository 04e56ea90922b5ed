"""Two pools at once (two `backprop grade` runs on one machine) never share sandbox uids.

Children are killed by uid and RLIMIT_NPROC counts per uid: pools sharing uids could kill
or starve each other's children (without bwrap's pid namespace, closing one pool's session
killed the other pool's child).
"""
import os
import tempfile

import pytest

from grader.runner import ChildPool, Limits
from grader.runner import sandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="per-child uids need root")

# asked through the protocol (a synchronous reply), not read from captured output, which a
# drain thread collects asynchronously
UID_MODULE = "import os\n\ndef uid(ns):\n    return os.getuid()\n"


def child_uid(session) -> int:
    assert session.load_module("who", UID_MODULE).ok
    r = session.call("who", "uid")
    assert r.ok, r.error
    return r.value


@pytest.mark.parametrize("isolation", ["rlimits-only", None])
def test_two_pools_use_disjoint_uids_and_do_not_kill_each_others_children(isolation):
    if isolation is None and sandbox.available_isolation() != "bwrap":
        pytest.skip("bwrap is not in use (not installed, not usable, or BACKPROP_ISOLATION=rlimits-only)")
    limits = Limits(timeout=5)
    with ChildPool(workers=1, limits=limits, isolation=isolation) as a, \
            ChildPool(workers=1, limits=limits, isolation=isolation) as b:
        sa, sb = a.session(), b.session()
        uid_a, uid_b = child_uid(sa), child_uid(sb)
        assert uid_a != uid_b and uid_a >= sandbox.UID_BASE and uid_b >= sandbox.UID_BASE
        sb.close()  # kills every process of its uid
        assert sa.exec_cells([{"id": "alive", "source": "x = 1"}])[0].status == "ok"
        sa.close()


def _held_by_us(block_base: int) -> bool:
    """Whether this process holds the flock of the uid block (from /proc/locks: another
    grading run on the machine may claim a freed block at any moment, so not "is it free")."""
    k = (block_base - sandbox.UID_BASE) // sandbox.UID_COUNT
    inode = os.stat(os.path.join(tempfile.gettempdir(), f"backprop-sandbox-uids-{k}.lock")).st_ino
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK" and fields[4] == str(os.getpid()) \
                    and int(fields[5].rsplit(":", 1)[1]) == inode:
                return True
    return False


def test_a_closed_pool_frees_its_uid_block():
    with ChildPool(workers=1) as a:
        first = a._uid_base
        assert _held_by_us(first)
    assert not _held_by_us(first)
