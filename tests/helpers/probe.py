"""A stand-in entry point for tests/test_forkserver.py: reports what a process sees, then exits as told.

``python -m tests.helpers.probe CODE [VAR ...]``: prints a JSON line (argv, argv[0]'s file name, cwd, the
named environment variables, pid and parent pid) to stdout and "to stderr" to stderr, then exits with CODE,
or kills itself with SIGKILL when CODE is ``kill``."""

import json
import os
import signal
import sys

if __name__ == "__main__":
    code, names = sys.argv[1], sys.argv[2:]
    print(json.dumps({"argv": sys.argv[1:], "argv0": os.path.basename(sys.argv[0]), "cwd": os.getcwd(),
                      "env": {n: os.environ.get(n) for n in names}, "pid": os.getpid(), "ppid": os.getppid()}))  # fmt: skip
    print("to stderr\r\nand a bar\rdone", file=sys.stderr)
    if code == "kill":
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(int(code))
