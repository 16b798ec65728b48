# Administers a running IceGrid registry through its admin session, for the IceGrid tests.
#   icegrid_admin.py REGISTRY_PROXY add-object PROXY TYPE
#   icegrid_admin.py REGISTRY_PROXY adapters          (prints "ADAPTER <id> <replica group>" lines)
# Prints "OK" and exits 0 on success.
import sys

import Ice
import IceGrid


def main():
    registry_str, action = sys.argv[1], sys.argv[2]
    with Ice.initialize(sys.argv[:1]) as comm:
        registry = IceGrid.RegistryPrx.checkedCast(comm.stringToProxy(registry_str))
        session = registry.createAdminSession("floe", "test")
        try:
            admin = session.getAdmin()
            if action == "add-object":
                admin.addObjectWithType(comm.stringToProxy(sys.argv[3]), sys.argv[4])
            elif action == "adapters":
                for adapter_id in admin.getAllAdapterIds():
                    for info in admin.getAdapterInfo(adapter_id):
                        print("ADAPTER %s %s" % (info.id, info.replicaGroupId or "-"))
            else:
                raise RuntimeError("unknown action " + action)
        finally:
            session.destroy()
    print("OK", flush=True)


if __name__ == "__main__":
    main()
