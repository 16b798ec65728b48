// ZeroC Ice C++ (C++11 mapping) IceStorm publisher of the neutral-client broker benchmark
// (icestorm.sh): publishes Demo::Clock::tick events (icestorm-lite/tests/slice/Clock.ice), each
// stamped with its send time, to a topic whose subscribers are zeroc-storm-sub processes
// (storm_sub.cpp), and measures the broker between them.
//
//   zeroc-storm-pub [--Ice.Prop=value ...] TOPIC_MANAGER TOPIC SUBSCRIBERS EVENTS SAMPLES
//                   IN_FLIGHT SYNC_DIR [--broker-pid=PID] [--gap-us=MICROS]
//
// Waits until SUBSCRIBERS subscribers (ids 0..SUBSCRIBERS-1) have written SYNC_DIR/ready.ID, then:
// - warm-up: one twoway event, until every subscriber has it (connections opened everywhere);
// - "one": EVENTS events published oneway one at a time (each call returns once written);
// - "many": EVENTS events published oneway with AMI, up to IN_FLIGHT not yet written;
//   each throughput phase runs from the send time of its first event to the receipt time of its
//   last event at the slowest subscriber (both microseconds since the Unix epoch, same clock);
// - "lat": SAMPLES events published twoway one at a time, one every MICROS (default 1000) µs
//   so that each normally arrives before the next is sent; latency = receipt time - send time,
//   over all subscribers;
// - "end": tells the subscribers to write their latencies and exit; destroys the topic.
// Prints one line of shell assignments: events_per_s_1, events_per_s (IN_FLIGHT), deliveries_per_s
// (events_per_s x subscribers), publish_per_s (IN_FLIGHT phase, until the last event was
// written), cpu_us_per_event (user + system time of process PID, when given, during the
// IN_FLIGHT phase, per event), p50_us and p99_us.

#include <Ice/Ice.h>
#include <IceStorm/IceStorm.h>
#include <Clock.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std;

namespace
{

using Steady = chrono::steady_clock;

long long
nowMicros()
{
    return chrono::duration_cast<chrono::microseconds>(chrono::system_clock::now().time_since_epoch()).count();
}

double
secondsSince(Steady::time_point start)
{
    return chrono::duration<double>(Steady::now() - start).count();
}

// user + system clock ticks of process `pid`, or -1 when unknown.
long long
cpuTicks(long pid)
{
    if(pid <= 0)
    {
        return -1;
    }
    ifstream in("/proc/" + to_string(pid) + "/stat");
    string stat((istreambuf_iterator<char>(in)), istreambuf_iterator<char>());
    auto paren = stat.rfind(')');
    if(paren == string::npos)
    {
        return -1;
    }
    istringstream fields(stat.substr(paren + 1));
    string field;
    long long utime = 0, stime = 0;
    // After the command name come state (field 3) ... utime (14) and stime (15).
    for(int i = 3; i <= 15 && fields >> field; ++i)
    {
        if(i == 14)
        {
            utime = atoll(field.c_str());
        }
        else if(i == 15)
        {
            stime = atoll(field.c_str());
        }
    }
    return utime + stime;
}

long long
percentile(const vector<long long>& sorted, double p)
{
    if(sorted.empty())
    {
        return 0;
    }
    auto i = static_cast<size_t>(static_cast<double>(sorted.size() - 1) * p + 0.5);
    return sorted[min(i, sorted.size() - 1)];
}

class Sync
{
public:
    Sync(string dir, int subscribers) : _dir(move(dir)), _subscribers(subscribers) {}

    // Waits until every subscriber has written marker `name`; returns their contents.
    vector<string> wait(const string& name, double timeoutSecs) const
    {
        auto start = Steady::now();
        vector<string> contents(_subscribers);
        vector<bool> seen(_subscribers, false);
        int left = _subscribers;
        while(true)
        {
            for(int i = 0; i < _subscribers; ++i)
            {
                if(!seen[i])
                {
                    ifstream in(_dir + "/" + name + "." + to_string(i));
                    if(in)
                    {
                        contents[i].assign(istreambuf_iterator<char>(in), istreambuf_iterator<char>());
                        seen[i] = true;
                        --left;
                    }
                }
            }
            if(left == 0)
            {
                return contents;
            }
            if(secondsSince(start) > timeoutSecs)
            {
                throw runtime_error(to_string(_subscribers - left) + " of " + to_string(_subscribers) +
                                    " subscribers reached '" + name + "' within " + to_string(timeoutSecs) + " s");
            }
            this_thread::sleep_for(chrono::milliseconds(1));
        }
    }

    // Waits for marker `name` (receipt times) and returns the latest.
    long long latest(const string& name, double timeoutSecs) const
    {
        long long last = 0;
        for(const auto& c : wait(name, timeoutSecs))
        {
            last = max(last, atoll(c.c_str()));
        }
        return last;
    }

private:
    const string _dir;
    const int _subscribers;
};

// Oneway AMI calls with at most `limit` not yet written.
class Window
{
public:
    explicit Window(int limit) : _limit(limit) {}

    void acquire()
    {
        unique_lock<mutex> guard(_lock);
        _changed.wait(guard, [this] { return _pending < _limit || _error; });
        if(_error)
        {
            rethrow_exception(_error);
        }
        ++_pending;
    }

    void release(exception_ptr error)
    {
        lock_guard<mutex> guard(_lock);
        --_pending;
        if(error && !_error)
        {
            _error = error;
        }
        _changed.notify_all();
    }

    void drain()
    {
        unique_lock<mutex> guard(_lock);
        _changed.wait(guard, [this] { return _pending == 0; });
        if(_error)
        {
            rethrow_exception(_error);
        }
    }

private:
    const int _limit;
    mutex _lock;
    condition_variable _changed;
    int _pending = 0;
    exception_ptr _error;
};

}

int
main(int argc, char* argv[])
{
    try
    {
        Ice::CommunicatorHolder holder(argc, argv);
        vector<string> args;
        long brokerPid = 0;
        long long gapMicros = 1000;
        for(int i = 1; i < argc; ++i)
        {
            string a = argv[i];
            if(a.compare(0, 13, "--broker-pid=") == 0)
            {
                brokerPid = atol(a.c_str() + 13);
            }
            else if(a.compare(0, 9, "--gap-us=") == 0)
            {
                gapMicros = atoll(a.c_str() + 9);
            }
            else
            {
                args.push_back(a);
            }
        }
        if(args.size() != 7)
        {
            cerr << "usage: zeroc-storm-pub [--Ice.Prop=value ...] TOPIC_MANAGER TOPIC SUBSCRIBERS EVENTS SAMPLES"
                    " IN_FLIGHT SYNC_DIR [--broker-pid=PID] [--gap-us=MICROS]"
                 << endl;
            return 2;
        }
        int subscribers = atoi(args[2].c_str());
        int events = atoi(args[3].c_str());
        int samples = atoi(args[4].c_str());
        int inFlight = atoi(args[5].c_str());
        if(subscribers < 1 || events < 1 || inFlight < 1)
        {
            throw runtime_error("SUBSCRIBERS, EVENTS and IN_FLIGHT must be at least 1");
        }
        Sync sync(args[6], subscribers);
        auto communicator = holder.communicator();
        auto manager = Ice::uncheckedCast<IceStorm::TopicManagerPrx>(communicator->stringToProxy(args[0]));
        if(!manager)
        {
            throw runtime_error("null topic manager proxy");
        }
        sync.wait("ready", 60);
        auto topic = manager->retrieve(args[1]);
        auto publisher = topic->getPublisher();
        if(!publisher)
        {
            throw runtime_error("null publisher");
        }
        auto oneway = Ice::uncheckedCast<Demo::ClockPrx>(publisher->ice_oneway());
        auto twoway = Ice::uncheckedCast<Demo::ClockPrx>(publisher->ice_twoway());

        // Warm-up: connections opened everywhere.
        twoway->tick("warm", 0, nowMicros());
        sync.wait("warm", 10);

        long long start = nowMicros();
        for(int i = 0; i < events; ++i)
        {
            oneway->tick("one", i, nowMicros());
        }
        double one = events / ((sync.latest("one", 300) - start) / 1e6);

        long long ticks = cpuTicks(brokerPid);
        auto window = make_shared<Window>(inFlight);
        auto published = Steady::now();
        start = nowMicros();
        for(int i = 0; i < events; ++i)
        {
            window->acquire();
            oneway->tickAsync(
                "many", i, nowMicros(), nullptr, [window](exception_ptr e) { window->release(e); },
                [window](bool) { window->release(nullptr); });
        }
        window->drain();
        double publishPerSec = events / secondsSince(published);
        double many = events / ((sync.latest("many", 300) - start) / 1e6);
        double cpu = -1;
        if(ticks >= 0)
        {
            cpu = static_cast<double>(cpuTicks(brokerPid) - ticks) / static_cast<double>(sysconf(_SC_CLK_TCK)) * 1e6 /
                  events;
        }

        for(int i = 0; i < samples; ++i)
        {
            auto next = Steady::now() + chrono::microseconds(gapMicros);
            twoway->tick("lat", i, nowMicros());
            this_thread::sleep_until(next);
        }
        twoway->tick("end", 0, nowMicros());
        sync.wait("end", 60);
        vector<long long> latencies;
        for(const auto& c : sync.wait("lat", 1))
        {
            istringstream in(c);
            long long l;
            while(in >> l)
            {
                latencies.push_back(l);
            }
        }
        sort(latencies.begin(), latencies.end());
        try
        {
            topic->destroy();
        }
        catch(const Ice::Exception&)
        {
        }
        printf("events_per_s_1=%.0f events_per_s=%.0f deliveries_per_s=%.0f publish_per_s=%.0f cpu_us_per_event=%.2f "
               "p50_us=%lld p99_us=%lld\n",
               one, many, many * subscribers, publishPerSec, cpu, percentile(latencies, 0.50),
               percentile(latencies, 0.99));
    }
    catch(const exception& e)
    {
        cerr << "storm-pub: " << e.what() << endl;
        return 1;
    }
    return 0;
}
