# ZeroC Ice (Python) side of runtime/tests/class_cycles.rs. Ice for Python always accepts class
# cycles (it sets Ice.AcceptClassCycles=1 itself), so it sends and receives them freely.
#   cycles.py client PROXY refuse|accept   sends every graph kind in 1.1 and 1.0; checks that the
#                                          cyclic ones fail with the MarshalException ZeroC's C++
#                                          servers answer (refuse) or all pass (accept)
#   cycles.py server                       prints "PROXY <proxy>", serves give/fail until shutdown
import os
import sys

import Ice

HERE = os.path.dirname(os.path.abspath(__file__))
Ice.loadSlice(os.path.join(HERE, "..", "slice", "Cycles.ice"))
import FloeCycles  # noqa: E402

# What a ZeroC C++ server (Ice 3.7.8, default properties) answers for a cyclic parameter: an
# UnknownLocalException whose text names the MarshalException and this reason.
REASON = "cycle detected during Value unmarshaling"


def graph(kind):
    if kind == 0:
        return None
    a = FloeCycles.Tracked(None)
    if kind == 1:
        return a
    if kind == 2:
        a.next = a
        return a
    b = FloeCycles.Tracked(None)
    if kind == 3:
        a.next = b
        b.next = a
        return a
    c = FloeCycles.Tracked(None)
    a.next = b
    b.next = c
    c.next = b
    return a


CYCLIC = {0: False, 1: False, 2: True, 3: True, 4: True}


def fail(what):
    print("FAILED: " + what, flush=True)
    sys.exit(1)


def client(comm, proxy, expect):
    base = FloeCycles.CyclesPrx.uncheckedCast(comm.stringToProxy(proxy))
    for enc in (Ice.EncodingVersion(1, 1), Ice.EncodingVersion(1, 0)):
        prx = FloeCycles.CyclesPrx.uncheckedCast(base.ice_encodingVersion(enc))
        for kind in sorted(CYCLIC):
            what = "take(kind %d) in %s" % (kind, Ice.encodingVersionToString(enc))
            try:
                prx.take(graph(kind))
                if CYCLIC[kind] and expect == "refuse":
                    fail(what + " was accepted")
            except Ice.UnknownLocalException as e:
                if not (CYCLIC[kind] and expect == "refuse"):
                    fail("%s: unexpected %r" % (what, e.unknown))
                if "::Ice::MarshalException" not in e.unknown or REASON not in e.unknown:
                    fail("%s: wrong error text %r" % (what, e.unknown))
            print("%s: as expected" % what, flush=True)
    print("OK client", flush=True)


class CyclesI(FloeCycles.Cycles):
    def take(self, t, current):
        pass

    def give(self, kind, current):
        return graph(kind)

    def fail(self, kind, current):
        raise FloeCycles.Carrier(graph(kind))

    def shutdown(self, current):
        current.adapter.getCommunicator().shutdown()


def server(comm):
    adapter = comm.createObjectAdapterWithEndpoints("Cycles", "tcp -h 127.0.0.1 -p 0")
    prx = adapter.add(CyclesI(), Ice.stringToIdentity("cycles"))
    adapter.activate()
    print("PROXY " + comm.proxyToString(prx), flush=True)
    comm.waitForShutdown()


def main():
    with Ice.initialize(sys.argv) as comm:
        if sys.argv[1] == "client":
            client(comm, sys.argv[2], sys.argv[3])
        else:
            server(comm)


if __name__ == "__main__":
    main()
