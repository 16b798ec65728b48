# ZeroC's Python server for the generated-code interop test: the same Tester, so that the generated
# Rust proxy can be checked against ZeroC. Prints the adapter's port, then serves until shutdown.
import os
import sys

import Ice

HERE = os.path.dirname(os.path.abspath(__file__))
Ice.loadSlice("-I" + HERE + "/../slice " + HERE + "/../slice/Interop.ice")
import Interop  # noqa: E402


class TesterI(Interop.Tester):
    def echo(self, s, current):
        return s

    def add(self, a, b, current):
        return a + b

    def mirror(self, p, current):
        return list(reversed(p)), {"points": len(p)}

    def next(self, c, current):
        return {Interop.Color.Red: Interop.Color.Green, Interop.Color.Green: Interop.Color.Blue,
                Interop.Color.Blue: Interop.Color.Red}[c]

    def maybe(self, s, current):
        return Ice.Unset if s is Ice.Unset else len(s)

    def fail(self, code, current):
        if code == 0:
            raise Interop.BaseError("base")
        raise Interop.DetailError("detail", code)

    def grow(self, s, current):
        if s is None:
            return None
        if isinstance(s, Interop.Circle):
            return Interop.Circle(s.name + "+", s.radius * 2)
        return Interop.Shape(s.name + "+")

    def _self(self, current):
        return Interop.TesterPrx.uncheckedCast(current.adapter.createProxy(current.id))

    def shutdown(self, current):
        current.adapter.getCommunicator().shutdown()


def main():
    with Ice.initialize(sys.argv) as communicator:
        adapter = communicator.createObjectAdapterWithEndpoints("Tester", "tcp -h 127.0.0.1 -p 0")
        adapter.add(TesterI(), Ice.stringToIdentity("tester"))
        adapter.activate()
        port = adapter.getEndpoints()[0].getInfo().port
        print("PORT %d" % port, flush=True)
        communicator.waitForShutdown()


if __name__ == "__main__":
    main()
