"""``python -m tests.helpers.sleeper``: sleeps for 10 minutes (tests/test_forkserver.py's timeout case)."""

import time

if __name__ == "__main__":
    time.sleep(600)
