#!/usr/bin/python3
# ZeroC's Python with ZeroC's IceStorm module, unmodified, against an IceStorm broker.
#
#   clock.py TOPIC_MANAGER_PROXY scenario TOPIC N [SOURCE]
#
# scenarios:
#   all        create/retrieve the topic, subscribe (twoway, twoway ordered, oneway, batch
#              oneway), publish N ticks twoway and N oneway, check every subscriber got every
#              tick (in order where ordered)
#   subscribe  subscribe (twoway, twoway ordered, oneway), print READY, wait for N ticks from
#              SOURCE on each, check order on the ordered one
#   publish    publish N ticks as SOURCE (twoway publisher proxy; oneway when N is negative)
# Prints "OK <scenario>" on success, exits 1 with the reason otherwise.

import os
import sys
import threading
import time

import Ice
import IceStorm

Ice.loadSlice(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "slice", "Clock.ice"))
import Demo  # noqa: E402

TIMEOUT = 30.0


def fail(msg):
    print("FAIL " + msg)
    sys.stdout.flush()
    os._exit(1)


class ClockI(Demo.Clock):
    def __init__(self, name):
        self.name = name
        self.cond = threading.Condition()
        self.ticks = []

    def tick(self, source, seq, sent, current=None):
        with self.cond:
            self.ticks.append((source, seq))
            self.cond.notify_all()

    def wait(self, source, n):
        deadline = time.time() + TIMEOUT
        with self.cond:
            while len([t for t in self.ticks if t[0] == source]) < n:
                left = deadline - time.time()
                if left <= 0:
                    got = len([t for t in self.ticks if t[0] == source])
                    fail("%s received %d of %d ticks from %s" % (self.name, got, n, source))
                self.cond.wait(left)
            return [t[1] for t in self.ticks if t[0] == source]


def now_micros():
    return int(time.time() * 1000000)


def topic_for(manager, name, create):
    if create:
        try:
            return manager.create(name)
        except IceStorm.TopicExists:
            pass
    return manager.retrieve(name)


def subscribe(communicator, topic, kinds):
    adapter = communicator.createObjectAdapterWithEndpoints("Subscribers", "tcp -h 127.0.0.1")
    subs = {}
    for kind in kinds:
        servant = ClockI(kind)
        prx = adapter.add(servant, Ice.stringToIdentity("py-%s-%s" % (kind, Ice.generateUUID())))
        qos = {}
        if kind == "twoway":
            prx = prx.ice_twoway()
        elif kind == "ordered":
            prx = prx.ice_twoway()
            qos["reliability"] = "ordered"
        elif kind == "oneway":
            prx = prx.ice_oneway()
        elif kind == "batch":
            prx = prx.ice_batchOneway()
        topic.subscribeAndGetPublisher(qos, prx)
        subs[kind] = servant
    adapter.activate()
    return subs


def check(subs, source, n):
    for kind, servant in subs.items():
        seqs = servant.wait(source, n)
        if sorted(seqs) != list(range(n)):
            fail("%s: wrong ticks %s" % (kind, seqs[:20]))
        if kind == "ordered" and seqs != list(range(n)):
            fail("ordered subscriber got ticks out of order: %s" % seqs[:20])


def publish(topic, source, n, oneway):
    pub = topic.getPublisher()
    pub = pub.ice_oneway() if oneway else pub.ice_twoway()
    clock = Demo.ClockPrx.uncheckedCast(pub)
    for i in range(n):
        clock.tick(source, i, now_micros())


def main():
    props = Ice.createProperties()
    props.setProperty("Ice.Default.Host", "127.0.0.1")
    # One dispatch thread: oneway ticks are dispatched in arrival order.
    props.setProperty("Ice.ThreadPool.Server.Size", "1")
    init = Ice.InitializationData()
    init.properties = props
    with Ice.initialize(sys.argv, init) as communicator:
        manager = IceStorm.TopicManagerPrx.checkedCast(communicator.stringToProxy(sys.argv[1]))
        if manager is None:
            fail("not a topic manager: " + sys.argv[1])
        scenario, name, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        source = sys.argv[5] if len(sys.argv) > 5 else "python"
        if scenario == "all":
            topic = manager.create(name)
            try:
                manager.create(name)
                fail("second create did not raise TopicExists")
            except IceStorm.TopicExists as e:
                if e.name != name:
                    fail("TopicExists names %r" % e.name)
            if manager.retrieve(name).getName() != name:
                fail("retrieve gave another topic")
            if name not in manager.retrieveAll():
                fail("retrieveAll misses the topic")
            try:
                manager.retrieve(name + "-missing")
                fail("retrieve of a missing topic did not raise NoSuchTopic")
            except IceStorm.NoSuchTopic as e:
                if e.name != name + "-missing":
                    fail("NoSuchTopic names %r" % e.name)
            subs = subscribe(communicator, topic, ["twoway", "ordered", "oneway", "batch"])
            ids = topic.getSubscribers()
            if len(ids) != 4:
                fail("getSubscribers gave %d identities" % len(ids))
            publish(topic, "twoway-pub", n, False)
            publish(topic, "oneway-pub", n, True)
            check(subs, "twoway-pub", n)
            check(subs, "oneway-pub", n)
        elif scenario == "subscribe":
            topic = topic_for(manager, name, True)
            subs = subscribe(communicator, topic, ["twoway", "ordered", "oneway"])
            print("READY")
            sys.stdout.flush()
            check(subs, source, n)
        elif scenario == "publish":
            topic = topic_for(manager, name, False)
            publish(topic, source, abs(n), n < 0)
        else:
            fail("unknown scenario " + scenario)
        print("OK " + scenario)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
