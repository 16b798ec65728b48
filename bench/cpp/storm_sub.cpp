// ZeroC Ice C++ (C++11 mapping) IceStorm subscriber of the neutral-client broker benchmark
// (icestorm.sh): receives Demo::Clock::tick events (icestorm-lite/tests/slice/Clock.ice) from a
// topic and reports to storm_pub.cpp through marker files in a shared directory.
//
//   zeroc-storm-sub [--Ice.Prop=value ...] TOPIC_MANAGER TOPIC ID EVENTS SYNC_DIR
//
// Retrieves TOPIC (creating it if missing), subscribes a oneway proxy to a Clock servant on
// tcp -h 127.0.0.1 (ZeroC's defaults otherwise: one dispatch thread), then writes SYNC_DIR/ready.ID.
// Events are told apart by their `source`:
//   warm        the first writes SYNC_DIR/warm.ID
//   one, many   the EVENTS-th of each writes SYNC_DIR/<source>.ID holding its receipt time
//               (microseconds since the Unix epoch), so the publisher can time the phase
//   lat         receipt time - sentMicros is recorded
//   end         writes the recorded latencies (µs, one a line) to SYNC_DIR/lat.ID, then
//               SYNC_DIR/end.ID, and exits
// A marker is written under a temporary name and renamed, so its reader never sees half of it.

#include <Ice/Ice.h>
#include <IceStorm/IceStorm.h>
#include <Clock.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std;

namespace
{

long long
nowMicros()
{
    return chrono::duration_cast<chrono::microseconds>(chrono::system_clock::now().time_since_epoch()).count();
}

class Marker
{
public:
    Marker(string dir, string id) : _dir(move(dir)), _id(move(id)) {}

    void write(const string& name, const string& content) const
    {
        string path = _dir + "/" + name + "." + _id;
        string tmp = path + ".tmp";
        {
            ofstream out(tmp);
            out << content;
            if(!out)
            {
                throw runtime_error("cannot write " + tmp);
            }
        }
        if(rename(tmp.c_str(), path.c_str()) != 0)
        {
            throw runtime_error("cannot rename " + tmp);
        }
    }

private:
    const string _dir;
    const string _id;
};

class ClockI : public Demo::Clock
{
public:
    ClockI(Marker marker, long long events) : _marker(move(marker)), _events(events) {}

    void tick(string source, int, long long sentMicros, const Ice::Current& current) override
    {
        long long now = nowMicros();
        lock_guard<mutex> guard(_lock);
        if(source == "lat")
        {
            _latencies.push_back(now - sentMicros);
        }
        else if(source == "one" || source == "many")
        {
            if(++_counts[source] == _events)
            {
                _marker.write(source, to_string(now) + "\n");
            }
        }
        else if(source == "warm")
        {
            if(++_counts[source] == 1)
            {
                _marker.write(source, "");
            }
        }
        else if(source == "end")
        {
            string lines;
            for(auto l : _latencies)
            {
                lines += to_string(l) + "\n";
            }
            _marker.write("lat", lines);
            _marker.write("end", "");
            current.adapter->getCommunicator()->shutdown();
        }
    }

private:
    const Marker _marker;
    const long long _events;
    mutex _lock;
    map<string, long long> _counts;
    vector<long long> _latencies;
};

}

int
main(int argc, char* argv[])
{
    try
    {
        Ice::CommunicatorHolder holder(argc, argv);
        if(argc != 6)
        {
            cerr << "usage: zeroc-storm-sub [--Ice.Prop=value ...] TOPIC_MANAGER TOPIC ID EVENTS SYNC_DIR" << endl;
            return 2;
        }
        string topicName = argv[2];
        Marker marker(argv[5], argv[3]);
        long long events = atoll(argv[4]);
        auto communicator = holder.communicator();
        auto manager = Ice::uncheckedCast<IceStorm::TopicManagerPrx>(communicator->stringToProxy(argv[1]));
        if(!manager)
        {
            throw runtime_error("null topic manager proxy");
        }
        shared_ptr<IceStorm::TopicPrx> topic;
        while(!topic)
        {
            try
            {
                topic = manager->retrieve(topicName);
            }
            catch(const IceStorm::NoSuchTopic&)
            {
                try
                {
                    topic = manager->create(topicName);
                }
                catch(const IceStorm::TopicExists&)
                {
                    // Another subscriber created it first: retrieve it again.
                }
            }
        }
        auto adapter = communicator->createObjectAdapterWithEndpoints("Subscriber", "tcp -h 127.0.0.1");
        auto subscriber = adapter->addWithUUID(make_shared<ClockI>(marker, events));
        adapter->activate();
        topic->subscribeAndGetPublisher(IceStorm::QoS(), subscriber->ice_oneway());
        marker.write("ready", "");
        communicator->waitForShutdown();
    }
    catch(const exception& e)
    {
        cerr << "storm-sub: " << e.what() << endl;
        return 1;
    }
    return 0;
}
