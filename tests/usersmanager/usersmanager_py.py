"""A small Python implementation of the users manager spec, on ZeroC Ice, written as a lab
student would (with the template's conventions), used to prove that Floe instances and Python
instances form one cluster.

usage: usersmanager_py.py STUBS_DIR --Ice.Config=FILE

STUBS_DIR holds the output of `slice2py slice/UsersManager.ice`. Properties, as for the Floe
binary: usersmanageradapter.Endpoints, IceStorm.TopicManager.Proxy, UsersManager.Topic
(default ManagerQuery), UsersManager.DataDir (users.json inside it),
UsersManager.SessionLifetime and UsersManager.QueryTimeout (milliseconds). Prints the
Manager's proxy when ready.
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time

sys.path.insert(0, sys.argv.pop(1))

import Ice  # noqa: E402
import IceStorm  # noqa: E402
import UsersManager  # noqa: E402


def hash_password(password, salt=None):
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), 100_000).hex()
    return salt, digest


class State:
    def __init__(self, adapter, props):
        self.adapter = adapter
        self.lock = threading.Lock()
        self.lifetime = props.getPropertyAsIntWithDefault("UsersManager.SessionLifetime", 120000) / 1000.0
        self.wait = props.getPropertyAsIntWithDefault("UsersManager.QueryTimeout", 5000) / 1000.0
        data_dir = props.getPropertyWithDefault("UsersManager.DataDir", "usersmanager-py-data")
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "users.json")
        self.users = json.load(open(self.path)) if os.path.exists(self.path) else {}
        self.creating = set()
        self.sessions = {}  # identity name -> [user, expires]
        self.pending = {}  # callback identity name -> [kind, event, answer]
        self.publisher = None

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.users, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def check(self, user, password):
        with self.lock:
            record = self.users.get(user)
        if record is None:
            return False
        _, digest = hash_password(password, record["salt"])
        return hmac.compare_digest(digest, record["hash"])

    def open_session(self, user):
        name = secrets.token_hex(16)
        with self.lock:
            self.sessions[name] = [user, time.monotonic() + self.lifetime]
        return UsersManager.SessionPrx.uncheckedCast(self.adapter.createProxy(Ice.Identity(name, "")))

    def mine(self, prx):
        """The session entry when `prx` is a session of this instance on its own endpoints."""
        if prx is None:
            return None
        with self.lock:
            entry = self.sessions.get(prx.ice_getIdentity().name)
        if entry is None or prx.ice_getIdentity().category != "":
            return None
        own = {(e.getInfo().host, e.getInfo().port) for e in self.adapter.getPublishedEndpoints()}
        theirs = {(e.getInfo().host, e.getInfo().port) for e in prx.ice_getEndpoints()}
        return entry if theirs and theirs <= own else None

    def ask(self, kind, publish):
        name = secrets.token_hex(16)
        event = threading.Event()
        slot = [kind, event, None]
        with self.lock:
            self.pending[name] = slot
        try:
            cb = UsersManager.ManagerQueryResponsePrx.uncheckedCast(
                self.adapter.createProxy(Ice.Identity(name, "response")))
            publish(cb)
            event.wait(self.wait)
            return slot[2]
        finally:
            with self.lock:
                del self.pending[name]

    def deliver(self, current, kind, answer):
        with self.lock:
            slot = self.pending.get(current.id.name)
            if slot is None or slot[0] != kind:
                raise Ice.ObjectNotExistException()
            if slot[2] is None:
                slot[2] = answer
            slot[1].set()

    def own_callback(self, cb):
        with self.lock:
            return cb is None or cb.ice_getIdentity().name in self.pending


class SessionI(UsersManager.Session):
    def __init__(self, state):
        self.state = state

    def entry(self, current):
        with self.state.lock:
            entry = self.state.sessions.get(current.id.name)
        if entry is None:
            raise Ice.ObjectNotExistException()
        return entry

    def getUser(self, current=None):
        return self.entry(current)[0]

    def isAlive(self, current=None):
        return time.monotonic() < self.entry(current)[1]

    def refresh(self, current=None):
        entry = self.entry(current)
        if time.monotonic() >= entry[1]:
            raise UsersManager.SessionExpired()
        with self.state.lock:
            if entry[0] not in self.state.users:
                raise UsersManager.InvalidUser(entry[0])
            entry[1] = time.monotonic() + self.state.lifetime


class ManagerI(UsersManager.Manager):
    def __init__(self, state):
        self.state = state

    def login(self, username, password, current=None):
        st = self.state
        with st.lock:
            local = username in st.users
        if local:
            if st.check(username, password):
                return st.open_session(username)
            raise UsersManager.Unauthorized("wrong credentials")
        answer = st.ask("login", lambda cb: st.publisher.login(username, password, cb))
        if answer is None:
            raise UsersManager.Unauthorized("unknown user")
        return answer

    def createUser(self, username, password, current=None):
        st = self.state
        with st.lock:
            if username in st.users or username in st.creating or not username:
                raise UsersManager.Unauthorized("user exists")
            st.creating.add(username)
        try:
            if st.ask("exists", lambda cb: st.publisher.checkUsername(username, cb)):
                raise UsersManager.Unauthorized("user exists")
            salt, digest = hash_password(password)
            with st.lock:
                st.users[username] = {"salt": salt, "hash": digest}
                st.save()
            return st.open_session(username)
        finally:
            with st.lock:
                st.creating.discard(username)

    def removeUser(self, activeSession, current=None):
        st = self.state
        entry = st.mine(activeSession)
        if entry is not None:
            if time.monotonic() >= entry[1]:
                raise UsersManager.SessionExpired()
            with st.lock:
                if entry[0] not in st.users:
                    raise UsersManager.InvalidUser(entry[0])
                del st.users[entry[0]]
                st.save()
            return
        if activeSession is None:
            raise UsersManager.InvalidUser("")
        if not st.ask("removed", lambda cb: st.publisher.removeUserBySession(activeSession, cb)):
            raise UsersManager.InvalidUser("")

    def verifySession(self, session, current=None):
        st = self.state
        if session is None:
            return False
        if st.mine(session) is not None:
            return True
        return bool(st.ask("verified", lambda cb: st.publisher.checkSession(session, cb)))


class ManagerQueryI(UsersManager.ManagerQuery):
    def __init__(self, state):
        self.state = state

    def login(self, username, password, responseRcvr, current=None):
        st = self.state
        if st.own_callback(responseRcvr):
            return
        if st.check(username, password):
            responseRcvr.sendSession(st.open_session(username))

    def checkUsername(self, username, responseRcvr, current=None):
        st = self.state
        if st.own_callback(responseRcvr):
            return
        with st.lock:
            known = username in st.users or username in st.creating
        if known:
            responseRcvr.userExists()

    def removeUserBySession(self, activeSession, responseRcvr, current=None):
        st = self.state
        if st.own_callback(responseRcvr):
            return
        entry = st.mine(activeSession)
        if entry is None or time.monotonic() >= entry[1]:
            return
        with st.lock:
            if entry[0] not in st.users:
                return
            del st.users[entry[0]]
            st.save()
        responseRcvr.userRemoved()

    def checkSession(self, session, responseRcvr, current=None):
        st = self.state
        if st.own_callback(responseRcvr):
            return
        if st.mine(session) is not None:
            responseRcvr.sessionVerified()


class ResponseI(UsersManager.ManagerQueryResponse):
    def __init__(self, state):
        self.state = state

    def sendSession(self, session, current=None):
        self.state.deliver(current, "login", session)

    def userExists(self, current=None):
        self.state.deliver(current, "exists", True)

    def userRemoved(self, current=None):
        self.state.deliver(current, "removed", True)

    def sessionVerified(self, current=None):
        self.state.deliver(current, "verified", True)


class Server(Ice.Application):
    def run(self, args):
        ic = self.communicator()
        props = ic.getProperties()
        adapter = ic.createObjectAdapter("usersmanageradapter")
        state = State(adapter, props)
        manager = adapter.add(ManagerI(state), Ice.stringToIdentity("manager"))
        adapter.addDefaultServant(SessionI(state), "")
        adapter.addDefaultServant(ResponseI(state), "response")
        query = adapter.addWithUUID(ManagerQueryI(state))
        adapter.activate()
        topic_manager = IceStorm.TopicManagerPrx.checkedCast(ic.propertyToProxy("IceStorm.TopicManager.Proxy"))
        name = props.getPropertyWithDefault("UsersManager.Topic", "ManagerQuery")
        try:
            topic = topic_manager.retrieve(name)
        except IceStorm.NoSuchTopic:
            try:
                topic = topic_manager.create(name)
            except IceStorm.TopicExists:
                topic = topic_manager.retrieve(name)
        topic.subscribeAndGetPublisher({}, query.ice_oneway())
        state.publisher = UsersManager.ManagerQueryPrx.uncheckedCast(topic.getPublisher())
        print(manager, flush=True)
        self.shutdownOnInterrupt()
        ic.waitForShutdown()
        try:
            topic.unsubscribe(query.ice_oneway())
        except Ice.Exception:
            pass
        return 0


if __name__ == "__main__":
    init = Ice.InitializationData()
    init.properties = Ice.createProperties(sys.argv)
    # Requests wait for answers that arrive as other requests: several dispatch threads.
    init.properties.setProperty("Ice.ThreadPool.Server.Size", "8")
    init.properties.setProperty("Ice.ThreadPool.Server.SizeMax", "64")
    init.properties.setProperty("Ice.ThreadPool.Client.Size", "4")
    sys.exit(Server().main(sys.argv, initData=init))
