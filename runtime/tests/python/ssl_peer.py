# ZeroC Ice (Python) peer of the ssl/wss tests (../ssl.rs).
#
#   ssl_peer.py server SPECS   SPECS: JSON list of {"name", "endpoints", "props"}; one
#                              communicator each, with its own IceSSL properties. Prints
#                              "PROXY <name> <proxy>" per spec, then "READY"; stops when stdin closes.
#   ssl_peer.py client SPECS   SPECS: JSON list of {"proxy", "props"}; one communicator per
#                              attempt. Prints one JSON line per attempt: {"ok": true, "peer": ...,
#                              "seen": ...} or {"ok": false, "exception": ice_id, "message": ...}.
#
# "peer" describes the server's certificate chain as this client saw it; "seen" is what the
# server saw of this client (its getContext answer). The servers' Hello.getContext answers with
# the client's certificate: {"certs": n, "cert0": hex DER, "cipher": ...}.
import json
import ssl
import sys
import threading

import Ice

from common import FloeTest


def ssl_info(con):
    # A wss connection's info is WebSocket info over the SSL one.
    info = con.getInfo()
    while info is not None and not hasattr(info, "certs"):
        info = getattr(info, "underlying", None)
    if info is None:
        return {"certs": "0"}
    certs = [ssl.PEM_cert_to_DER_cert(pem).hex() for pem in info.certs]
    out = {"certs": str(len(certs)), "cipher": info.cipher}
    if certs:
        out["cert0"] = certs[0]
    return out


class HelloI(FloeTest.Hello):
    def sayHello(self, name, current):
        return "Hello, %s!" % name

    def add(self, a, b, current):
        return a + b

    def notify(self, msg, current):
        pass

    def notifyCount(self, current):
        return 0

    def echoBytes(self, data, current):
        return data

    def getContext(self, current):
        return ssl_info(current.con)

    def slow(self, ms, current):
        pass

    def fail(self, reason, current):
        raise FloeTest.TestFailure(reason)

    def echoProxy(self, p, current):
        return p

    def callback(self, name, current):
        pass

    def shutdown(self, current):
        current.adapter.getCommunicator().shutdown()


def communicator(props):
    init = Ice.InitializationData()
    init.properties = Ice.createProperties()
    # IcePy registers IceSSL but loads it only when asked, as ZeroC's test driver does.
    init.properties.setProperty("Ice.Plugin.IceSSL", "IceSSL:createIceSSL")
    init.properties.setProperty("Ice.Default.Host", "127.0.0.1")
    init.properties.setProperty("Ice.RetryIntervals", "-1")
    for k, v in props.items():
        init.properties.setProperty(k, str(v))
    return Ice.initialize(init)


def server(specs):
    comms = []
    for spec in specs:
        comm = communicator(spec.get("props", {}))
        comms.append(comm)
        adapter = comm.createObjectAdapterWithEndpoints("SslTest", spec["endpoints"])
        prx = adapter.add(HelloI(), Ice.stringToIdentity("hello"))
        adapter.activate()
        print("PROXY %s %s" % (spec["name"], comm.proxyToString(prx)), flush=True)
    print("READY", flush=True)
    sys.stdin.read()
    for comm in comms:
        comm.destroy()


def client(specs):
    for spec in specs:
        comm = communicator(spec.get("props", {}))
        try:
            hello = FloeTest.HelloPrx.uncheckedCast(comm.stringToProxy(spec["proxy"]))
            hello = hello.ice_invocationTimeout(10000)
            if hello.sayHello("python") != "Hello, python!":
                raise RuntimeError("wrong sayHello answer")
            seen = hello.getContext()
            peer = ssl_info(hello.ice_getConnection())
            print(json.dumps({"ok": True, "peer": peer, "seen": seen}), flush=True)
        except Ice.Exception as e:
            message = str(e).replace("\n", " | ")
            print(json.dumps({"ok": False, "exception": e.ice_id(), "message": message}), flush=True)
        finally:
            comm.destroy()


if __name__ == "__main__":
    mode, specs = sys.argv[1], json.loads(sys.argv[2])
    {"server": server, "client": client}[mode](specs)
