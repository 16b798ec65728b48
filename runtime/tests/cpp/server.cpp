// ZeroC Ice C++ (C++11 mapping) server for the Floe client interop tests: implements
// FloeTest::Hello (with its "admin" facet and a default servant for category "any") from
// ../slice/Test.ice and FloeTypes::Types from ../slice/Types.ice. Prints "PROXY <hello proxy>"
// and "TYPES <types proxy>" once ready; stops on Hello.shutdown() or when stdin closes.

#include <Ice/Ice.h>
#include <ServerOnly.h>
#include <Test.h>
#include <Types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

using namespace std;

namespace
{

class HelloI : public FloeTest::Hello
{
public:
    explicit HelloI(string suffix) : _suffix(move(suffix)) {}

    string sayHello(string name, const Ice::Current& current) override
    {
        string out = "Hello, " + name + "!";
        if(!_suffix.empty())
        {
            out += " (" + _suffix + " " + Ice::identityToString(current.id) + ")";
        }
        return out;
    }

    int add(int a, int b, const Ice::Current&) override
    {
        return static_cast<int>(static_cast<unsigned int>(a) + static_cast<unsigned int>(b));
    }

    void notify(string, const Ice::Current&) override { ++_count; }

    int notifyCount(const Ice::Current&) override { return _count; }

    FloeTest::ByteSeq echoBytes(FloeTest::ByteSeq data, const Ice::Current&) override { return data; }

    FloeTest::StringDict getContext(const Ice::Current& current) override { return current.ctx; }

    void slow(int ms, const Ice::Current&) override
    {
        this_thread::sleep_for(chrono::milliseconds(max(ms, 0)));
    }

    void fail(string reason, const Ice::Current&) override { throw FloeTest::TestFailure(reason); }

    shared_ptr<Ice::ObjectPrx> echoProxy(shared_ptr<Ice::ObjectPrx> p, const Ice::Current&) override
    {
        return p;
    }

    void callback(string name, const Ice::Current& current) override
    {
        auto cb = Ice::uncheckedCast<FloeTest::CallbackPrx>(current.con->createProxy(Ice::stringToIdentity(name)));
        cb->ping("from c++");
    }

    void shutdown(const Ice::Current& current) override { current.adapter->getCommunicator()->shutdown(); }

private:
    string _suffix;
    atomic<int> _count{0};
};

class AdminI : public FloeTest::Admin
{
public:
    string name(const Ice::Current&) override { return "c++ admin"; }
};

FloeTypes::Color nextColor(FloeTypes::Color c)
{
    switch(c)
    {
    case FloeTypes::Color::Red:
        return FloeTypes::Color::Green;
    case FloeTypes::Color::Green:
        return FloeTypes::Color::Blue;
    default:
        return FloeTypes::Color::Red;
    }
}

FloeTypes::Basics nextBasics(const FloeTypes::Basics& b)
{
    FloeTypes::Basics r;
    r.b = !b.b;
    r.y = static_cast<Ice::Byte>(b.y + 1);
    r.s = static_cast<short>(b.s + 1);
    r.i = static_cast<int>(static_cast<unsigned int>(b.i) + 1u);
    r.l = static_cast<long long>(static_cast<unsigned long long>(b.l) + 1u);
    r.f = b.f * 2;
    r.d = b.d * 2;
    r.str = b.str + "!";
    r.c = nextColor(b.c);
    return r;
}

class TypesI : public FloeTypes::Types
{
public:
    FloeTypes::Basics next(FloeTypes::Basics b, const Ice::Current&) override { return nextBasics(b); }

    FloeTypes::BasicsSeq sortBasics(FloeTypes::BasicsSeq s, int& count, const Ice::Current&) override
    {
        count = static_cast<int>(s.size());
        stable_sort(s.begin(), s.end(),
                    [](const FloeTypes::Basics& a, const FloeTypes::Basics& b) { return a.i < b.i; });
        return s;
    }

    FloeTypes::DoubleSeq scale(FloeTypes::DoubleSeq v, double k, FloeTypes::BoolSeq& negative,
                               const Ice::Current&) override
    {
        negative.clear();
        for(auto& x : v)
        {
            negative.push_back(x < 0);
            x *= k;
        }
        return v;
    }

    FloeTypes::StringSeqSeq split(FloeTypes::StringSeq lines, const Ice::Current&) override
    {
        FloeTypes::StringSeqSeq out;
        for(const auto& line : lines)
        {
            FloeTypes::StringSeq words;
            istringstream in(line);
            string w;
            while(in >> w)
            {
                words.push_back(w);
            }
            out.push_back(words);
        }
        return out;
    }

    FloeTypes::IntStringDict invert(FloeTypes::StringIntDict d, const Ice::Current&) override
    {
        FloeTypes::IntStringDict out;
        for(const auto& e : d)
        {
            out[e.second] = e.first;
        }
        return out;
    }

    FloeTypes::ColorNames shiftColors(FloeTypes::ColorNames names, const Ice::Current&) override
    {
        FloeTypes::ColorNames out;
        for(auto& e : names)
        {
            auto v = e.second;
            sort(v.begin(), v.end());
            out[nextColor(e.first)] = v;
        }
        return out;
    }

    FloeTypes::Nested wrap(FloeTypes::Nested n, const Ice::Current& current) override
    {
        FloeTypes::Nested out;
        out.basics = nextBasics(n.basics);
        for(const auto& e : n.counts)
        {
            out.keys.push_back(e.first);
        }
        out.counts = n.counts;
        out.target = current.adapter->createProxy(current.id);
        return out;
    }

    shared_ptr<FloeTypes::Node> makeRing(int n, const Ice::Current&) override
    {
        if(n <= 0)
        {
            return nullptr;
        }
        vector<shared_ptr<FloeTypes::Node>> nodes;
        for(int i = 0; i < n; ++i)
        {
            if(i % 2 == 1)
            {
                nodes.push_back(make_shared<FloeTypes::LabeledNode>(i, nullptr, "n" + to_string(i), i / 2.0));
            }
            else
            {
                nodes.push_back(make_shared<FloeTypes::Node>(i, nullptr));
            }
        }
        for(int i = 0; i < n; ++i)
        {
            nodes[i]->next = nodes[(i + 1) % n];
        }
        // shared_ptr cycles never free themselves: the servant keeps each ring and breaks it
        // when it is destroyed.
        _rings.push_back(nodes[0]);
        return nodes[0];
    }

    int sumRing(shared_ptr<FloeTypes::Node> n, const Ice::Current&) override
    {
        int sum = 0;
        set<FloeTypes::Node*> seen;
        for(auto p = n; p && seen.insert(p.get()).second; p = p->next)
        {
            sum += p->value;
            if(dynamic_pointer_cast<FloeTypes::LabeledNode>(p))
            {
                sum += 1000;
            }
        }
        return sum;
    }

    shared_ptr<FloeTypes::Node> makeServerNodeSliced(const Ice::Current&) override
    {
        return make_shared<FloeTypes::ServerNode>(7, make_shared<FloeTypes::Node>(8, nullptr), "server",
                                                  2.5, "hidden");
    }

    shared_ptr<FloeTypes::Node> makeServerNodeCompact(const Ice::Current& current) override
    {
        return makeServerNodeSliced(current);
    }

    Ice::optional<int> opOptional(Ice::optional<string> s, Ice::optional<FloeTypes::Basics> b,
                                  Ice::optional<FloeTypes::StringSeq>& words, const Ice::Current&) override
    {
        if(b)
        {
            words = FloeTypes::StringSeq{b->str};
        }
        if(s)
        {
            return static_cast<int>(s->size());
        }
        return Ice::nullopt;
    }

    void throwBase(string reason, const Ice::Current&) override { throw FloeTypes::Base(reason); }

    void throwDerived(string reason, int code, const Ice::Current&) override
    {
        throw FloeTypes::Derived(reason, code);
    }

    void throwServerOnlyCompact(string reason, const Ice::Current&) override
    {
        throw FloeTypes::ServerOnly(reason, 77, "hidden");
    }

    void throwServerOnlySliced(string reason, const Ice::Current&) override
    {
        throw FloeTypes::ServerOnly(reason, 78, "hidden");
    }

    ~TypesI() override
    {
        for(auto& r : _rings)
        {
            r->next = nullptr;
        }
    }

private:
    vector<shared_ptr<FloeTypes::Node>> _rings;
};

}

int main(int argc, char* argv[])
{
    try
    {
        Ice::InitializationData init;
        init.properties = Ice::createProperties(argc, argv);
        // Several dispatch threads: concurrent calls and a servant calling back over the
        // caller's own connection.
        init.properties->setProperty("Ice.ThreadPool.Server.Size", "4");
        init.properties->setProperty("Ice.ThreadPool.Server.SizeMax", "8");
        // ZeroC refuses class graphs with cycles unless told otherwise; sumRing takes rings.
        init.properties->setProperty("Ice.AcceptClassCycles", "1");
        Ice::CommunicatorHolder holder(init);
        auto communicator = holder.communicator();
        auto adapter = communicator->createObjectAdapterWithEndpoints("Cpp", "tcp -h 127.0.0.1 -p 0");
        auto hello = adapter->add(make_shared<HelloI>(""), Ice::stringToIdentity("hello"));
        adapter->addFacet(make_shared<AdminI>(), Ice::stringToIdentity("hello"), "admin");
        adapter->addDefaultServant(make_shared<HelloI>("default servant for"), "any");
        auto types = adapter->add(make_shared<TypesI>(), Ice::stringToIdentity("types"));
        adapter->activate();
        cout << "PROXY " << communicator->proxyToString(hello) << endl;
        cout << "TYPES " << communicator->proxyToString(types) << endl;
        // The test harness keeps stdin open while it needs the server: a test that dies without
        // calling shutdown() never leaves this process behind.
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
