# ZeroC Ice client driving a Floe server. Usage: client.py PROXY SCENARIO [--Ice.X=...]
# Prints "OK <scenario>" and exits 0 when every check passes.
import sys
import threading
import time

import Ice

from common import FloeTest, check


def operations(comm, base):
    hello = FloeTest.HelloPrx.checkedCast(base)
    check(hello is not None, "checkedCast")
    check(hello.sayHello("ice") == "Hello, ice!", "sayHello")
    check(hello.add(2, 40) == 42, "add")
    check(bytes(hello.echoBytes(b"\x00\x01\xff")) == b"\x00\x01\xff", "echoBytes")
    check(hello.ice_id() == "::FloeTest::Hello", "ice_id")
    check(hello.ice_ids() == ["::FloeTest::Hello", "::Ice::Object"], "ice_ids")
    check(hello.ice_isA("::Ice::Object"), "ice_isA Object")
    check(not hello.ice_isA("::FloeTest::Admin"), "ice_isA Admin")
    ctx = hello.getContext({"user": "alice", "trace": "1"})
    check(ctx == {"user": "alice", "trace": "1"}, "context %r" % ctx)
    big = bytes(range(256)) * 40
    check(bytes(hello.echoBytes(big)) == big, "echoBytes big")
    e10 = FloeTest.HelloPrx.uncheckedCast(hello.ice_encodingVersion(Ice.EncodingVersion(1, 0)))
    check(e10.sayHello("old") == "Hello, old!", "sayHello 1.0")
    # Compression: a -z endpoint makes the client compress large requests.
    z = FloeTest.HelloPrx.uncheckedCast(hello.ice_compress(True))
    check(bytes(z.echoBytes(big)) == big, "echoBytes compressed")
    check(z.sayHello("z") == "Hello, z!", "small compressed-capable call")
    p = comm.stringToProxy("cat/obj -f fac -o:tcp -h 127.0.0.1 -p 4061 -t 5000 -z")
    back = hello.echoProxy(p)
    check(back == p, "echoProxy %s" % back)
    check(hello.echoProxy(None) is None, "echoProxy null")
    check(e10.echoProxy(p) == p.ice_encodingVersion(Ice.EncodingVersion(1, 0)), "echoProxy 1.0 (a 1.0 stream carries no proxy encoding)")


def oneway(comm, base):
    hello = FloeTest.HelloPrx.uncheckedCast(base)
    start = hello.notifyCount()
    ow = hello.ice_oneway()
    for i in range(5):
        ow.notify("o%d" % i)
    batch = hello.ice_batchOneway()
    for i in range(3):
        batch.notify("b%d" % i)
    batch.ice_flushBatchRequests()
    deadline = time.time() + 5
    while hello.notifyCount() < start + 8 and time.time() < deadline:
        time.sleep(0.02)
    check(hello.notifyCount() == start + 8, "8 notifications, got %d" % (hello.notifyCount() - start))


def datagram(comm, base):
    hello = FloeTest.HelloPrx.uncheckedCast(base)
    start = hello.notifyCount()
    d = hello.ice_datagram()
    for i in range(3):
        d.notify("d%d" % i)
    bd = hello.ice_batchDatagram()
    for i in range(2):
        bd.notify("bd%d" % i)
    bd.ice_flushBatchRequests()
    deadline = time.time() + 5
    while hello.notifyCount() < start + 5 and time.time() < deadline:
        time.sleep(0.02)
    check(hello.notifyCount() == start + 5, "5 datagram notifications, got %d" % (hello.notifyCount() - start))


def send_datagrams(comm, base):
    """Sends COUNT datagram notifications of SIZE bytes each (arguments after the scenario)."""
    count, size = int(sys.argv[3]), int(sys.argv[4])
    hello = FloeTest.HelloPrx.uncheckedCast(base.ice_datagram())
    for i in range(count):
        hello.notify("x" * size)


class CallbackI(FloeTest.Callback):
    def __init__(self):
        self.msgs = []

    def ping(self, msg, current):
        self.msgs.append(msg)


def bidir(comm, base):
    hello = FloeTest.HelloPrx.uncheckedCast(base)
    adapter = comm.createObjectAdapter("")
    cb = CallbackI()
    adapter.add(cb, Ice.stringToIdentity("cb"))
    adapter.activate()
    hello.ice_getConnection().setAdapter(adapter)
    hello.callback("cb")
    hello.callback("cb")
    check(cb.msgs == ["from server", "from server"], "callbacks %r" % cb.msgs)


def udp_bidir(comm, base):
    """Datagram requests whose servant calls back over the datagram's own connection."""
    adapter = comm.createObjectAdapter("")
    cb = CallbackI()
    adapter.add(cb, Ice.stringToIdentity("cb"))
    adapter.activate()
    hello = FloeTest.HelloPrx.uncheckedCast(base.ice_datagram())
    hello.ice_getConnection().setAdapter(adapter)
    deadline = time.time() + 10
    while len(cb.msgs) < 3 and time.time() < deadline:
        hello.callback("cb")
        time.sleep(0.1)
    check(len(cb.msgs) >= 3 and set(cb.msgs) == {"from server"}, "callbacks %r" % cb.msgs)


def exceptions(comm, base):
    hello = FloeTest.HelloPrx.uncheckedCast(base)
    try:
        hello.fail("boom")
        check(False, "fail raised nothing")
    except FloeTest.TestFailure as e:
        check(e.reason == "boom", "reason %r" % e.reason)
    e10 = FloeTest.HelloPrx.uncheckedCast(hello.ice_encodingVersion(Ice.EncodingVersion(1, 0)))
    try:
        e10.fail("old boom")
        check(False, "fail 1.0 raised nothing")
    except FloeTest.TestFailure as e:
        check(e.reason == "old boom", "1.0 reason %r" % e.reason)
    missing = FloeTest.HelloPrx.uncheckedCast(hello.ice_identity(Ice.stringToIdentity("cat/nosuch")))
    try:
        missing.ice_ping()
        check(False, "ObjectNotExist not raised")
    except Ice.ObjectNotExistException as e:
        check(e.id.name == "nosuch" and e.id.category == "cat" and e.operation == "ice_ping", "ONE fields %s" % e)
    try:
        hello.ice_facet("nofacet").ice_ping()
        check(False, "FacetNotExist not raised")
    except Ice.FacetNotExistException as e:
        check(e.facet == "nofacet", "FNE facet %s" % e)
    try:
        hello.ice_invoke("noSuchOp", Ice.OperationMode.Normal, bytes())
        check(False, "OperationNotExist not raised")
    except Ice.OperationNotExistException as e:
        check(e.operation == "noSuchOp", "ONE op %s" % e)
    # Wrong mode: add is idempotent, a Normal call must fail with UnknownLocalException.
    try:
        hello.ice_invoke("add", Ice.OperationMode.Normal, bytes([6, 0, 0, 0, 1, 1]))
        check(False, "mode mismatch not raised")
    except Ice.UnknownLocalException as e:
        check("unexpected operation mode" in str(e.unknown), "mode text %r" % e.unknown)
    # Truncated parameters: status 5.
    try:
        hello.ice_invoke("sayHello", Ice.OperationMode.Normal, bytes([7, 0, 0, 0, 1, 1, 9]))
        check(False, "unmarshal error not raised")
    except Ice.UnknownLocalException:
        pass
    # The facet servant.
    admin = FloeTest.AdminPrx.checkedCast(hello.ice_facet("admin"))
    check(admin is not None and admin.name() == "admin facet", "admin facet")
    # Default servant for category "any".
    anyp = FloeTest.HelloPrx.uncheckedCast(hello.ice_identity(Ice.stringToIdentity("any/whatever")))
    check(anyp.sayHello("x") == "Hello, x! (default servant for any/whatever)", "default servant")


def slow(comm, base):
    hello = FloeTest.HelloPrx.uncheckedCast(base)
    hello.slow(int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 3000)
    hello.ice_ping()


def concurrent(comm, base):
    hello = FloeTest.HelloPrx.uncheckedCast(base)
    results = []

    def run():
        results.append(hello.sayHello("c"))

    t0 = time.time()
    slow_call = hello.begin_slow(1000)
    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fast = time.time() - t0
    hello.end_slow(slow_call)
    check(results == ["Hello, c!"] * 4, "concurrent results")
    check(fast < 0.9, "calls were not blocked by the slow dispatch (%.2fs)" % fast)


def main():
    args = sys.argv[:1] + [a for a in sys.argv[3:] if a.startswith("--")]
    with Ice.initialize(args) as comm:
        base = comm.stringToProxy(sys.argv[1])
        globals()[sys.argv[2]](comm, base)
    print("OK " + sys.argv[2], flush=True)


if __name__ == "__main__":
    main()
