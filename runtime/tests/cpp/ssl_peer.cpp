// ZeroC Ice C++ (C++11 mapping, IceSSL on OpenSSL) peer of the ssl/wss tests (../ssl.rs).
// Speaks ::FloeTest::Hello's sayHello and getContext through Blobject and ice_invoke, so it
// needs no generated code.
//
//   ssl_peer server ENDPOINTS --IceSSL.X=Y...   prints "PROXY <proxy>"; stops when stdin closes.
//                                                getContext answers with what the server saw of
//                                                the client: certs, subject, verified, cipher.
//   ssl_peer client PROXY --IceSSL.X=Y...       calls sayHello and getContext, then prints
//                                                "OK certs=<n> subject=<server's subject>
//                                                verified=<0|1> seen=<subject the server saw>",
//                                                or "EXC <ice_id> <message>" and exits 1.

#include <Ice/Ice.h>
#include <IceSSL/IceSSL.h>

#include <iostream>
#include <map>
#include <string>

using namespace std;

namespace
{

typedef map<string, string> StringDict;

// The SSL info of a connection (under a WebSocket one for wss).
shared_ptr<IceSSL::ConnectionInfo> sslInfo(const shared_ptr<Ice::Connection>& con)
{
    shared_ptr<Ice::ConnectionInfo> info = con->getInfo();
    while(info)
    {
        if(auto s = dynamic_pointer_cast<IceSSL::ConnectionInfo>(info))
        {
            return s;
        }
        info = info->underlying;
    }
    return nullptr;
}

StringDict describe(const shared_ptr<Ice::Connection>& con)
{
    StringDict d;
    auto info = sslInfo(con);
    d["certs"] = to_string(info ? info->certs.size() : 0);
    if(info)
    {
        d["verified"] = info->verified ? "1" : "0";
        d["cipher"] = info->cipher;
        if(!info->certs.empty())
        {
            d["subject"] = string(info->certs[0]->getSubjectDN());
        }
    }
    return d;
}

class HelloI : public Ice::Blobject
{
public:
    bool ice_invoke(vector<Ice::Byte> inParams, vector<Ice::Byte>& outParams, const Ice::Current& current) override
    {
        auto communicator = current.adapter->getCommunicator();
        Ice::OutputStream out(communicator);
        out.startEncapsulation(current.encoding, Ice::FormatType::DefaultFormat);
        if(current.operation == "sayHello")
        {
            Ice::InputStream in(communicator, inParams);
            in.startEncapsulation();
            string name;
            in.read(name);
            in.endEncapsulation();
            out.write("Hello, " + name + "!");
        }
        else if(current.operation == "getContext")
        {
            out.write(describe(current.con));
        }
        else if(current.operation == "ice_ping" || current.operation == "ice_isA")
        {
            if(current.operation == "ice_isA")
            {
                out.write(true);
            }
        }
        else
        {
            throw Ice::OperationNotExistException(__FILE__, __LINE__, current.id, current.facet, current.operation);
        }
        out.endEncapsulation();
        out.finished(outParams);
        return true;
    }
};

int runServer(const shared_ptr<Ice::Communicator>& communicator, const string& endpoints)
{
    auto adapter = communicator->createObjectAdapterWithEndpoints("SslTest", endpoints);
    auto prx = adapter->add(make_shared<HelloI>(), Ice::stringToIdentity("hello"));
    adapter->activate();
    cout << "PROXY " << communicator->proxyToString(prx) << endl;
    string line;
    while(getline(cin, line))
    {
    }
    return 0;
}

int runClient(const shared_ptr<Ice::Communicator>& communicator, const string& proxy)
{
    try
    {
        auto prx = communicator->stringToProxy(proxy)->ice_invocationTimeout(10000);
        vector<Ice::Byte> inParams, outParams;
        {
            Ice::OutputStream out(communicator);
            out.startEncapsulation();
            out.write(string("c++"));
            out.endEncapsulation();
            out.finished(inParams);
        }
        if(!prx->ice_invoke("sayHello", Ice::OperationMode::Normal, inParams, outParams))
        {
            cout << "EXC user-exception sayHello" << endl;
            return 1;
        }
        string greeting;
        {
            Ice::InputStream in(communicator, outParams);
            in.startEncapsulation();
            in.read(greeting);
            in.endEncapsulation();
        }
        if(greeting != "Hello, c++!")
        {
            cout << "EXC wrong-answer " << greeting << endl;
            return 1;
        }
        {
            Ice::OutputStream out(communicator);
            out.startEncapsulation();
            out.endEncapsulation();
            out.finished(inParams);
        }
        prx->ice_invoke("getContext", Ice::OperationMode::Normal, inParams, outParams);
        StringDict seen;
        {
            Ice::InputStream in(communicator, outParams);
            in.startEncapsulation();
            in.read(seen);
            in.endEncapsulation();
        }
        StringDict peer = describe(prx->ice_getConnection());
        cout << "OK certs=" << peer["certs"] << " verified=" << peer["verified"] << " subject=" << peer["subject"]
             << " | seen=" << seen["subject"] << " | seen_certs=" << seen["certs"] << endl;
        return 0;
    }
    catch(const Ice::Exception& ex)
    {
        ostringstream os;
        os << ex;
        string message = os.str();
        for(auto& c : message)
        {
            if(c == '\n')
            {
                c = ' ';
            }
        }
        cout << "EXC " << ex.ice_id() << " " << message << endl;
        return 1;
    }
}

}

int main(int argc, char* argv[])
{
    Ice::registerIceSSL();
    if(argc < 3)
    {
        cerr << "usage: ssl_peer server ENDPOINTS | client PROXY [--IceSSL.X=Y...]" << endl;
        return 2;
    }
    string mode = argv[1];
    string target = argv[2];
    int rest = argc - 2;
    char** restv = argv + 2;
    Ice::InitializationData init;
    init.properties = Ice::createProperties(rest, restv);
    init.properties->setProperty("Ice.Default.Host", "127.0.0.1");
    init.properties->setProperty("Ice.RetryIntervals", "-1");
    Ice::CommunicatorHolder holder(init);
    return mode == "server" ? runServer(holder.communicator(), target) : runClient(holder.communicator(), target);
}
