// interop_server.js runs a node-opcua server for the adapters/opcua
// interoperability tests: a Basic256Sha256 SignAndEncrypt endpoint only,
// user name and password or an X.509 user certificate required (no
// anonymous access), and a few
// writable variables of several data types in namespace 1.
//
// Environment:
//   PKI_DIR         folder for the server's PKIs (its own certificate, and
//                   the client and user certificates it has seen, all
//                   accepted); created if missing
//   OPCUA_USER      accepted user name
//   OPCUA_PASSWORD  accepted password
//   MAX_NODES       operation limit for reads, writes and monitored items
//                   per call (small, so the client must chunk)
//
// Once listening, it prints one JSON line to stdout:
//   {"port": 12345, "certificate": "/path/to/server/certificate.pem"}
// It exits when its standard input closes, so a test that dies does not
// leave it running.
"use strict";

const path = require("path");
const {
    OPCUAServer,
    OPCUACertificateManager,
    SecurityPolicy,
    MessageSecurityMode,
    DataType,
    Variant,
    StatusCodes,
    makeAccessLevelFlag,
} = require("node-opcua");

async function main() {
    const pkiDir = process.env.PKI_DIR;
    if (!pkiDir) {
        throw new Error("PKI_DIR is not set");
    }
    const user = process.env.OPCUA_USER || "operator";
    const password = process.env.OPCUA_PASSWORD || "secret";
    const maxNodes = parseInt(process.env.MAX_NODES || "3", 10);

    // Unknown client certificates are accepted (and stored as trusted):
    // the test PKI is throwaway, and the point of the test is the client's
    // handling of the *server* certificate.
    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pkiDir, "pki"),
        automaticallyAcceptUnknownCertificate: true,
    });
    await serverCertificateManager.initialize();
    // Likewise for X.509 user certificates.
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pkiDir, "userpki"),
        automaticallyAcceptUnknownCertificate: true,
    });
    await userCertificateManager.initialize();

    const server = new OPCUAServer({
        host: "127.0.0.1",
        hostname: "127.0.0.1",
        port: 0,
        serverCertificateManager,
        userCertificateManager,
        securityPolicies: [SecurityPolicy.Basic256Sha256],
        securityModes: [MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: false,
        userManager: {
            isValidUser: (userName, pw) => userName === user && pw === password,
        },
        serverCapabilities: {
            operationLimits: {
                maxNodesPerRead: maxNodes,
                maxNodesPerWrite: maxNodes,
                maxMonitoredItemsPerCall: maxNodes,
            },
        },
        buildInfo: { productName: "bmsgw-interop-peer" },
    });
    await server.initialize();

    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.getOwnNamespace();
    const folder = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Test" });
    const rw = makeAccessLevelFlag("CurrentRead | CurrentWrite");

    const variables = [
        ["Bool", DataType.Boolean, false],
        ["Int16", DataType.Int16, -5],
        ["UInt16", DataType.UInt16, 7],
        ["Int32", DataType.Int32, -70000],
        ["UInt32", DataType.UInt32, 70000],
        ["Float", DataType.Float, 1.5],
        ["Double", DataType.Double, 21.25],
    ];
    for (const [name, dataType, value] of variables) {
        ns.addVariable({
            componentOf: folder,
            browseName: name,
            nodeId: `s=Test.${name}`,
            dataType,
            accessLevel: rw,
            userAccessLevel: rw,
            minimumSamplingInterval: 0,
            value: new Variant({ dataType, value }),
        });
    }

    // Counter changes on its own, as a sensor would.
    const counter = ns.addVariable({
        componentOf: folder,
        browseName: "Counter",
        nodeId: "s=Test.Counter",
        dataType: DataType.UInt32,
        minimumSamplingInterval: 0,
        value: new Variant({ dataType: DataType.UInt32, value: 0 }),
    });
    let n = 0;
    const timer = setInterval(() => {
        n += 1;
        counter.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: n }), StatusCodes.Good);
    }, 100);

    await server.start();

    const port = server.endpoints[0].port;
    const certificate = path.join(pkiDir, "pki", "own", "certs", "certificate.pem");
    process.stdout.write(JSON.stringify({ port, certificate }) + "\n");

    let stopping = false;
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        clearInterval(timer);
        try {
            await server.shutdown(0);
        } finally {
            process.exit(0);
        }
    };
    process.stdin.on("end", stop);
    process.stdin.on("close", stop);
    process.stdin.resume();
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((err) => {
    process.stderr.write(`interop_server: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
