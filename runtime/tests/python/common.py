# Shared set-up for the interop scripts: loads ../slice/Test.ice with ZeroC's Ice.loadSlice.
import os
import sys

import Ice

HERE = os.path.dirname(os.path.abspath(__file__))
Ice.loadSlice("-I" + Ice.getSliceDir() + " " + os.path.join(HERE, "..", "slice", "Test.ice"))
import FloeTest  # noqa: E402


def check(cond, what):
    if not cond:
        print("FAILED: " + what, flush=True)
        sys.exit(1)
