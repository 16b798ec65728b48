"""ZeroC Python client that exercises every operation and every exception path of one
usersmanager instance.

usage: client.py STUBS_DIR MANAGER_PROXY SESSION_LIFETIME_MS QUERY_TIMEOUT_MS

STUBS_DIR holds the output of `slice2py slice/UsersManager.ice`. Prints one line per check and
`OK` at the end; exits 1 at the first failed check.
"""

import sys
import time

sys.path.insert(0, sys.argv[1])

import Ice  # noqa: E402
import UsersManager  # noqa: E402

MANAGER, LIFETIME, WAIT = sys.argv[2], int(sys.argv[3]) / 1000.0, int(sys.argv[4]) / 1000.0


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok:", what, flush=True)


def raises(exc, call, what):
    try:
        call()
    except exc as e:
        print("ok:", what, "->", type(e).__name__, flush=True)
        return e
    except Exception as e:  # noqa: BLE001
        print("FAILED:", what, "raised", repr(e), flush=True)
        sys.exit(1)
    print("FAILED:", what, "did not raise", exc.__name__, flush=True)
    sys.exit(1)


def timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


with Ice.initialize(sys.argv[:1]) as ic:
    manager = UsersManager.ManagerPrx.checkedCast(ic.stringToProxy(MANAGER))
    check(manager is not None, "the printed proxy is a ::UsersManager::Manager")

    # createUser and the session it opens
    s1 = manager.createUser("alice", "secret-1")
    check(s1 is not None, "createUser returns a session")
    check(s1.getUser() == "alice", "getUser names the user")
    check(s1.isAlive(), "a new session is alive")
    s1.refresh()
    check(len(s1.ice_getIdentity().name) >= 32, "session identity carries at least 128 random bits")
    e = raises(UsersManager.Unauthorized, lambda: manager.createUser("alice", "other"),
               "createUser of an existing name")
    check(e.reason != "", "Unauthorized carries a reason")
    raises(UsersManager.Unauthorized, lambda: manager.createUser("", "x"), "createUser of an empty name")

    # login
    s2 = manager.login("alice", "secret-1")
    check(s2.getUser() == "alice" and s2.ice_getIdentity() != s1.ice_getIdentity(),
          "login opens a new session")
    raises(UsersManager.Unauthorized, lambda: manager.login("alice", "wrong"), "login with a wrong password")
    _, took = timed(lambda: raises(UsersManager.Unauthorized, lambda: manager.login("nobody", "x"),
                                   "login of an unknown user"))
    check(took >= WAIT * 0.9, "an unknown user is refused after the query wait (%.2fs)" % took)

    # verifySession
    check(manager.verifySession(s1) and manager.verifySession(s2), "verifySession of real sessions")
    check(not manager.verifySession(None), "verifySession of a null proxy")
    made_up = UsersManager.SessionPrx.uncheckedCast(
        s1.ice_identity(Ice.Identity("0" * 64, s1.ice_getIdentity().category)))
    check(not manager.verifySession(made_up), "verifySession of a made-up identity on the real endpoints")
    elsewhere = UsersManager.SessionPrx.uncheckedCast(
        ic.stringToProxy("dummy:tcp -h 127.0.0.1 -p 9").ice_identity(s1.ice_getIdentity()))
    check(not manager.verifySession(elsewhere), "verifySession of a real identity behind other endpoints")
    unknown = UsersManager.SessionPrx.uncheckedCast(
        ic.stringToProxy("session/feedface:tcp -h 127.0.0.1 -p 9"))
    verified, took = timed(lambda: manager.verifySession(unknown))
    check(not verified and took >= WAIT * 0.9,
          "verifySession of an unknown session is false after the query wait (%.2fs)" % took)

    # an unknown session object
    raises(Ice.ObjectNotExistException, lambda: made_up.getUser(), "getUser on an identity never created")

    # lifetime and refresh
    s3 = manager.login("alice", "secret-1")
    time.sleep(LIFETIME * 0.6)
    s3.refresh()
    time.sleep(LIFETIME * 0.6)
    check(s3.isAlive(), "refresh extends the session from the moment it is received")
    time.sleep(LIFETIME * 1.1)
    check(not s3.isAlive() and s3.getUser() == "alice", "an expired session is not alive but still named")
    raises(UsersManager.SessionExpired, lambda: s3.refresh(), "refresh of an expired session")
    raises(UsersManager.SessionExpired, lambda: manager.removeUser(s3), "removeUser with an expired session")
    check(manager.verifySession(s3), "verifySession does not look at the lifetime")

    # removeUser
    s4 = manager.login("alice", "secret-1")
    s5 = manager.login("alice", "secret-1")
    raises(UsersManager.InvalidUser, lambda: manager.removeUser(None), "removeUser with a null session")
    raises(UsersManager.InvalidUser, lambda: manager.removeUser(made_up), "removeUser with a forged session")
    _, took = timed(lambda: raises(UsersManager.InvalidUser, lambda: manager.removeUser(unknown),
                                   "removeUser with an unknown session"))
    check(took >= WAIT * 0.9, "an unknown session is refused after the query wait (%.2fs)" % took)
    manager.removeUser(s4)
    print("ok: removeUser with a live session", flush=True)
    e = raises(UsersManager.InvalidUser, lambda: s5.refresh(), "refresh once the user is gone")
    check(e.user == "alice", "InvalidUser names the user")
    e = raises(UsersManager.InvalidUser, lambda: manager.removeUser(s5), "removeUser of a removed user")
    check(e.user == "alice", "InvalidUser names the user")
    raises(UsersManager.Unauthorized, lambda: manager.login("alice", "secret-1"), "login of a removed user")

    # the name is free again, and the old sessions do not come back to life
    s6 = manager.createUser("alice", "secret-2")
    check(s6.getUser() == "alice", "a removed name can be created again")
    raises(UsersManager.InvalidUser, lambda: s5.refresh(), "an old session does not belong to the new user")
    raises(UsersManager.Unauthorized, lambda: manager.login("alice", "secret-1"), "the old password is gone")
    check(manager.login("alice", "secret-2").getUser() == "alice", "the new password works")

    # the built-in operations answer as ZeroC's do
    check(s6.ice_isA("::UsersManager::Session") and manager.ice_id() == "::UsersManager::Manager",
          "ice_isA and ice_id")
    print("OK", flush=True)
