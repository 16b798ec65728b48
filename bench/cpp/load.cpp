// ZeroC Ice C++ (C++11 mapping) load generator for ../slice/Bench.ice: the counterpart of
// ../src/bin/load.rs, with the same phases, arguments and output, so that run.sh can drive either
// server with either client.
//
//   zeroc-bench-load [--Ice.Prop=value ...] [--IceSSL.Prop=value ...] PROXY [SECONDS]
//
// IceSSL is linked in (-lIceSSL++11) and registered before the communicator starts, so PROXY may
// have ssl endpoints.
//
// Prints one "name value" line per figure: ping latency p50/p99 (µs, at least SECONDS and 1000
// samples, after 2000 warm-up pings), `add` calls/s with 1, 16 and 64 calls in flight (AMI
// chains: each chain issues its next call from the previous call's response callback), `send`
// MB/s (10^6 bytes) with 64 KiB and 1 MiB payloads one after the other, and oneway calls/s
// (oneway pings sent one at a time for SECONDS, each returning once written, then counted until
// the server has dispatched them all, as load.rs does). SECONDS (default 3) is the length of each
// timed phase.

#include <Ice/Ice.h>
#include <Bench.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std;

namespace
{

using Clock = chrono::steady_clock;

double
secondsSince(Clock::time_point start)
{
    return chrono::duration<double>(Clock::now() - start).count();
}

double
percentile(const vector<double>& sorted, double p)
{
    auto i = static_cast<size_t>(static_cast<double>(sorted.size() - 1) * p + 0.5);
    return sorted[i < sorted.size() ? i : sorted.size() - 1];
}

// The shared state of the AMI chains of one calls/s phase.
struct Flight
{
    shared_ptr<Bench::ServicePrx> prx;
    Clock::time_point deadline;
    mutex lock;
    condition_variable done;
    int running = 0;
    uint64_t calls = 0;
    exception_ptr error;
};

void
finish(const shared_ptr<Flight>& flight, uint64_t calls, exception_ptr error)
{
    lock_guard<mutex> guard(flight->lock);
    flight->calls += calls;
    if(error && !flight->error)
    {
        flight->error = error;
    }
    if(--flight->running == 0)
    {
        flight->done.notify_all();
    }
}

// Issues chain `t`'s next call unless the phase is over; `calls` is how many it completed so far.
void
step(const shared_ptr<Flight>& flight, int t, uint64_t calls)
{
    if(Clock::now() >= flight->deadline)
    {
        finish(flight, calls, nullptr);
        return;
    }
    flight->prx->addAsync(
        t, 1,
        [flight, t, calls](int r) {
            if(r != t + 1)
            {
                finish(flight, calls, make_exception_ptr(runtime_error("add returned " + to_string(r))));
                return;
            }
            step(flight, t, calls + 1);
        },
        [flight, calls](exception_ptr e) { finish(flight, calls, e); });
}

// `inFlight` chains of `add` for `secs`; returns calls per second.
double
callsPerSecond(const shared_ptr<Bench::ServicePrx>& prx, int inFlight, double secs)
{
    auto flight = make_shared<Flight>();
    flight->prx = prx;
    auto start = Clock::now();
    flight->deadline = start + chrono::duration_cast<Clock::duration>(chrono::duration<double>(secs));
    flight->running = inFlight;
    for(int t = 0; t < inFlight; ++t)
    {
        step(flight, t, 0);
    }
    unique_lock<mutex> guard(flight->lock);
    flight->done.wait(guard, [&flight] { return flight->running == 0; });
    if(flight->error)
    {
        rethrow_exception(flight->error);
    }
    return static_cast<double>(flight->calls) / secondsSince(start);
}

// Sends `size`-byte payloads one after the other for `secs`; returns MB/s (10^6 bytes).
double
megabytesPerSecond(const shared_ptr<Bench::ServicePrx>& prx, size_t size, double secs)
{
    Bench::ByteSeq data(size);
    for(size_t i = 0; i < size; ++i)
    {
        data[i] = static_cast<Ice::Byte>(i % 251);
    }
    prx->send(data);
    auto start = Clock::now();
    size_t sent = 0;
    while(secondsSince(start) < secs)
    {
        prx->send(data);
        sent += size;
    }
    return static_cast<double>(sent) / secondsSince(start) / 1e6;
}

// Sends oneway pings for about `secs` and waits until the server has dispatched them all;
// returns calls per second.
double
onewaysPerSecond(const shared_ptr<Bench::ServicePrx>& prx, double secs)
{
    auto oneway = prx->ice_oneway();
    auto before = static_cast<uint32_t>(prx->onewayCount());
    auto start = Clock::now();
    int32_t sent = 0;
    while(secondsSince(start) < secs)
    {
        for(int i = 0; i < 1000; ++i)
        {
            oneway->onewayPing();
        }
        sent += 1000;
    }
    while(true)
    {
        auto got = static_cast<int32_t>(static_cast<uint32_t>(prx->onewayCount()) - before);
        if(got >= sent)
        {
            break;
        }
        if(secondsSince(start) > secs * 10.0 + 10.0)
        {
            throw runtime_error("only " + to_string(got) + " of " + to_string(sent) + " oneway calls arrived");
        }
        this_thread::sleep_for(chrono::milliseconds(1));
    }
    return static_cast<double>(sent) / secondsSince(start);
}

}

int
main(int argc, char* argv[])
{
    try
    {
        Ice::registerIceSSL();
        Ice::CommunicatorHolder holder(argc, argv);
        if(argc < 2)
        {
            cerr << "usage: zeroc-bench-load [--Ice.Prop=value ...] PROXY [SECONDS]" << endl;
            return 2;
        }
        string proxy = argv[1];
        double secs = 3.0;
        if(argc > 2)
        {
            char* end = nullptr;
            double s = strtod(argv[2], &end);
            if(end != argv[2] && *end == '\0')
            {
                secs = s;
            }
        }
        auto base = holder->stringToProxy(proxy);
        if(!base)
        {
            throw runtime_error("null proxy");
        }
        auto prx = Ice::checkedCast<Bench::ServicePrx>(base);
        if(!prx)
        {
            throw runtime_error(proxy + " is not a ::Bench::Service");
        }

        // Warm-up: connection, allocator, caches.
        for(int i = 0; i < 2000; ++i)
        {
            prx->ping();
        }
        vector<double> samples;
        auto start = Clock::now();
        while(secondsSince(start) < secs || samples.size() < 1000)
        {
            auto t = Clock::now();
            prx->ping();
            samples.push_back(chrono::duration<double, micro>(Clock::now() - t).count());
        }
        sort(samples.begin(), samples.end());
        printf("ping_p50_us %.1f\n", percentile(samples, 0.50));
        printf("ping_p99_us %.1f\n", percentile(samples, 0.99));
        fflush(stdout);
        for(int inFlight : {1, 16, 64})
        {
            printf("calls_per_s_%d %.0f\n", inFlight, callsPerSecond(prx, inFlight, secs));
            fflush(stdout);
        }
        printf("send_mb_per_s_64k %.1f\n", megabytesPerSecond(prx, 64 * 1024, secs));
        fflush(stdout);
        printf("send_mb_per_s_1m %.1f\n", megabytesPerSecond(prx, 1024 * 1024, secs));
        fflush(stdout);
        printf("oneway_per_s %.0f\n", onewaysPerSecond(prx, secs));
        fflush(stdout);
    }
    catch(const exception& e)
    {
        cerr << "load: " << e.what() << endl;
        return 1;
    }
    return 0;
}
