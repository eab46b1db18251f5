"""How many processes and threads a training job lays out on the host it runs on."""

import os

from container.training.distributed import Layout


def test_threads_follow_the_cpus_the_process_may_run_on_not_the_hosts_count():
    allowed = os.sched_getaffinity(0)
    assert Layout({"SM_NUM_CPUS": "1"}, "auto").threads == 1
    assert Layout({"SM_NUM_CPUS": "512"}, "auto").threads == len(allowed)
    try:
        os.sched_setaffinity(0, {min(allowed)})  # pinned, as taskset or a cpuset pins it
        assert Layout({"SM_NUM_CPUS": str(len(allowed))}, "auto").threads == 1
        assert Layout({}, "auto").threads == 1
    finally:
        os.sched_setaffinity(0, allowed)
