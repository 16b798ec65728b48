# ZeroC Ice server for Floe clients. Prints "PROXY <proxy>" once ready; stops on Hello.shutdown().
import sys
import threading
import time

import Ice

from common import FloeTest


class HelloI(FloeTest.Hello):
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    def sayHello(self, name, current):
        return "Hello, %s!" % name

    def add(self, a, b, current):
        return a + b

    def notify(self, msg, current):
        with self.lock:
            self.count += 1

    def notifyCount(self, current):
        return self.count

    def echoBytes(self, data, current):
        return data

    def getContext(self, current):
        return current.ctx

    def slow(self, ms, current):
        time.sleep(ms / 1000.0)

    def fail(self, reason, current):
        raise FloeTest.TestFailure(reason)

    def echoProxy(self, p, current):
        return p

    def callback(self, name, current):
        cb = FloeTest.CallbackPrx.uncheckedCast(current.con.createProxy(Ice.stringToIdentity(name)))
        cb.ping("from python")

    def shutdown(self, current):
        current.adapter.getCommunicator().shutdown()


class AdminI(FloeTest.Admin):
    def name(self, current):
        return "python admin"


class LocatorRegistryI(Ice.LocatorRegistry):
    """Remembers the endpoints adapters register (setAdapterDirectProxy)."""

    def __init__(self):
        self.adapters = {}

    def setAdapterDirectProxy(self, id, proxy, current):
        if proxy is None:
            self.adapters.pop(id, None)
        else:
            self.adapters[id] = proxy
        return Ice.Future.completed(None)

    def setReplicatedAdapterDirectProxy(self, id, group, proxy, current):
        return self.setAdapterDirectProxy(id, proxy, current)

    def setServerProcessProxy(self, id, proxy, current):
        return Ice.Future.completed(None)


class LocatorI(Ice.Locator):
    """A minimal locator: knows the adapter "HelloAdapter", the well-known object "hello", and
    every adapter registered with its registry."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.registry = LocatorRegistryI()
        self.registry_prx = Ice.LocatorRegistryPrx.uncheckedCast(
            adapter.add(self.registry, Ice.stringToIdentity("registry")))

    def findObjectById(self, id, current):
        if id.name == "hello" and id.category == "":
            return Ice.Future.completed(current.adapter.getCommunicator().stringToProxy("hello @ HelloAdapter"))
        if id.name == "direct-hello":
            return Ice.Future.completed(self.adapter.createDirectProxy(Ice.stringToIdentity("hello")))
        f = Ice.Future()
        f.set_exception(Ice.ObjectNotFoundException())
        return f

    def findAdapterById(self, id, current):
        if id in self.registry.adapters:
            return Ice.Future.completed(self.registry.adapters[id])
        if id == "HelloAdapter":
            return Ice.Future.completed(self.adapter.createDirectProxy(Ice.stringToIdentity("dummy")))
        f = Ice.Future()
        f.set_exception(Ice.AdapterNotFoundException())
        return f

    def getRegistry(self, current):
        return self.registry_prx


def main():
    # Several dispatch threads: a servant that calls a client back over the client's own
    # connection (bidir) waits for a reply that another thread has to read.
    with Ice.initialize(sys.argv + ["--Ice.ThreadPool.Server.Size=4"]) as comm:
        # Ice.initialize takes only the Ice prefixes from the command line; `--Py.*` sets up the
        # adapter (an AdapterId, for instance).
        comm.getProperties().parseCommandLineOptions("Py", sys.argv)
        endpoints = comm.getProperties().getPropertyWithDefault(
            "Py.Endpoints", "tcp -h 127.0.0.1 -p 0:udp -h 127.0.0.1 -p 0:ws -h 127.0.0.1 -p 0 -r /floe")
        adapter = comm.createObjectAdapterWithEndpoints("Py", endpoints)
        prx = adapter.add(HelloI(), Ice.stringToIdentity("hello"))
        adapter.addFacet(AdminI(), Ice.stringToIdentity("hello"), "admin")
        adapter.add(LocatorI(adapter), Ice.stringToIdentity("locator"))
        adapter.activate()
        print("PROXY " + comm.proxyToString(prx), flush=True)
        comm.waitForShutdown()


if __name__ == "__main__":
    main()
