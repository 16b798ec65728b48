// ZeroC Ice C++ (C++11 mapping) server for ../slice/Bench.ice, the baseline of the benchmark.
// Serves "bench" on tcp -h 127.0.0.1 -p 0 (or Bench.Endpoints, e.g. ssl -h 127.0.0.1 -p 0),
// prints "PROXY <proxy>" once ready, and stops on shutdown() or when its standard input closes.
// Ice.*, IceSSL.* and Bench.* properties come from the command line (run.sh passes the same ones
// to both servers). IceSSL is linked in (-lIceSSL++11) and registered before the communicator
// starts.

#include <Ice/Ice.h>
#include <Bench.h>

#include <atomic>
#include <iostream>
#include <thread>

using namespace std;

namespace
{

class ServiceI : public Bench::Service
{
public:
    void ping(const Ice::Current&) override {}

    int add(int a, int b, const Ice::Current&) override
    {
        return static_cast<int>(static_cast<unsigned int>(a) + static_cast<unsigned int>(b));
    }

    Bench::ByteSeq echo(Bench::ByteSeq data, const Ice::Current&) override { return data; }

    void send(Bench::ByteSeq, const Ice::Current&) override {}

    void onewayPing(const Ice::Current&) override { _oneways.fetch_add(1, memory_order_relaxed); }

    int onewayCount(const Ice::Current&) override { return _oneways.load(memory_order_relaxed); }

    void shutdown(const Ice::Current& current) override { current.adapter->getCommunicator()->shutdown(); }

private:
    atomic<int> _oneways{0};
};

}

int main(int argc, char* argv[])
{
    try
    {
        Ice::registerIceSSL();
        Ice::CommunicatorHolder holder(argc, argv);
        auto communicator = holder.communicator();
        auto props = communicator->getProperties();
        props->parseCommandLineOptions("Bench", Ice::argsToStringSeq(argc, argv));
        if(props->getProperty("Bench.Endpoints").empty())
        {
            props->setProperty("Bench.Endpoints", "tcp -h 127.0.0.1 -p 0");
        }
        auto adapter = communicator->createObjectAdapter("Bench");
        auto prx = adapter->add(make_shared<ServiceI>(), Ice::stringToIdentity("bench"));
        adapter->activate();
        cout << "PROXY " << communicator->proxyToString(prx) << endl;
        thread watcher([communicator] {
            string line;
            while(getline(cin, line))
            {
            }
            communicator->shutdown();
        });
        watcher.detach();
        communicator->waitForShutdown();
    }
    catch(const exception& e)
    {
        cerr << "server: " << e.what() << endl;
        return 1;
    }
    return 0;
}
