# ZeroC's Python client for the generated-code interop test: calls a Floe server whose servant
# is generated Rust, checks every answer, prints OK.
import os
import sys

import Ice

HERE = os.path.dirname(os.path.abspath(__file__))
Ice.loadSlice("-I" + HERE + "/../slice " + HERE + "/../slice/Interop.ice")
import Interop  # noqa: E402


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main(proxy, encoding):
    props = Ice.createProperties()
    props.setProperty("Ice.Default.EncodingVersion", encoding)
    init = Ice.InitializationData()
    init.properties = props
    with Ice.initialize(init) as communicator:
        t = Interop.TesterPrx.checkedCast(communicator.stringToProxy(proxy))
        check(t is not None, "checkedCast")
        check(t.echo("héllo") == "héllo", "echo")
        check(t.add(2, 40) == 42, "add")
        r, counts = t.mirror([Interop.Point(1, 2), Interop.Point(3, 4)])
        check([(p.x, p.y) for p in r] == [(3, 4), (1, 2)], "mirror")
        check(counts == {"points": 2}, "mirror counts")
        check(t.next(Interop.Color.Blue) == Interop.Color.Red, "next")
        if encoding == "1.1":
            check(t.maybe("abc") == 3, "maybe set")
            check(t.maybe(Ice.Unset) is Ice.Unset, "maybe unset")
        try:
            t.fail(0)
            check(False, "fail(0) raised nothing")
        except Interop.DetailError:
            check(False, "fail(0) raised DetailError")
        except Interop.BaseError as e:
            check(e.reason == "base", "BaseError.reason")
        try:
            t.fail(7)
            check(False, "fail(7) raised nothing")
        except Interop.DetailError as e:
            check(e.reason == "detail" and e.code == 7, "DetailError members")
        g = t.grow(Interop.Circle("c", 1.5))
        check(isinstance(g, Interop.Circle) and g.name == "c+" and g.radius == 3.0, "grow circle")
        g = t.grow(Interop.Shape("s"))
        check(type(g) is Interop.Shape and g.name == "s+", "grow shape")
        check(t.grow(None) is None, "grow null")
        s = t._self()
        check(s is not None and s.ice_getIdentity() == t.ice_getIdentity(), "self")
        s.ice_ping()
        t.shutdown()
    print("OK " + encoding)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "1.1")
