// client.js drives node-opcua's client for the uaserver tests: a
// third-party OPC UA client against the gateway's server.
//
// It reads one JSON command per line from stdin and prints one JSON
// answer per line to stdout, echoing the command's "id":
//   {"id":1,"op":"connect","endpoint":"opc.tcp://127.0.0.1:4840"}
//   {"id":2,"op":"namespace","uri":"urn:bmsgw:gateway"}  -> {"index":1}
//   {"id":3,"op":"browse","node":"ns=1;s=Gateway"}        -> {"refs":[{"nodeId","browseName","nodeClass"}]}
//   {"id":4,"op":"read","node":"ns=1;s=valby/gym/Occupied"} -> {"status","value","dataType"}
//   {"id":5,"op":"subscribe","node":"..."}                -> {"ok":true}
//   {"id":6,"op":"write","node":"...","type":"Double","value":21.5} -> {"status":"Good"}
//   {"id":7,"op":"close"}
// Subscribed changes arrive unasked as {"event":"change","node","value","status"}.
// Errors are {"id":n,"error":"..."}. It exits when stdin closes.
"use strict";

const readline = require("readline");
const {
    OPCUAClient, MessageSecurityMode, SecurityPolicy, AttributeIds, ClientSubscription,
    ClientMonitoredItem, TimestampsToReturn, DataType, NodeClass,
} = require("node-opcua");

let client = null;
let session = null;
let subscription = null;

function out(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

function plain(v) {
    if (v instanceof Date) return v.toISOString();
    return v;
}

async function handle(cmd) {
    switch (cmd.op) {
    case "connect": {
        client = OPCUAClient.create({
            endpointMustExist: false,
            securityMode: MessageSecurityMode.None,
            securityPolicy: SecurityPolicy.None,
            connectionStrategy: { maxRetry: 0 },
            requestedSessionTimeout: 60000,
        });
        await client.connect(cmd.endpoint);
        session = await client.createSession();
        return { ok: true };
    }
    case "namespace": {
        const dv = await session.read({ nodeId: "i=2255", attributeId: AttributeIds.Value });
        return { index: dv.value.value.indexOf(cmd.uri) };
    }
    case "browse": {
        const res = await session.browse(cmd.node);
        return {
            status: res.statusCode.name,
            refs: (res.references || []).map((r) => ({
                nodeId: r.nodeId.toString(),
                browseName: r.browseName.name,
                nodeClass: NodeClass[r.nodeClass],
            })),
        };
    }
    case "read": {
        const dv = await session.read({ nodeId: cmd.node, attributeId: AttributeIds.Value });
        return { status: dv.statusCode.name, value: plain(dv.value.value), dataType: DataType[dv.value.dataType] };
    }
    case "subscribe": {
        if (!subscription) {
            subscription = ClientSubscription.create(session, {
                requestedPublishingInterval: 50, requestedLifetimeCount: 1000,
                requestedMaxKeepAliveCount: 20, maxNotificationsPerPublish: 100,
                publishingEnabled: true, priority: 1,
            });
        }
        const item = ClientMonitoredItem.create(subscription,
            { nodeId: cmd.node, attributeId: AttributeIds.Value },
            { samplingInterval: 0, discardOldest: true, queueSize: 10 },
            TimestampsToReturn.Both);
        item.on("changed", (dv) => out({ event: "change", node: cmd.node, status: dv.statusCode.name, value: plain(dv.value.value) }));
        await new Promise((resolve, reject) => {
            item.once("initialized", resolve);
            item.once("err", (e) => reject(new Error(String(e))));
        });
        return { ok: true };
    }
    case "write": {
        const value = cmd.type === "DateTime" ? new Date(cmd.value) : cmd.value;
        const status = await session.write({
            nodeId: cmd.node, attributeId: AttributeIds.Value,
            value: { value: { dataType: DataType[cmd.type], value } },
        });
        return { status: status.name };
    }
    case "close": {
        if (subscription) await subscription.terminate();
        if (session) await session.close();
        if (client) await client.disconnect();
        session = client = subscription = null;
        return { ok: true };
    }
    }
    throw new Error("unknown op " + cmd.op);
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
    const cmd = JSON.parse(line);
    chain = chain.then(async () => {
        try {
            out(Object.assign({ id: cmd.id }, await handle(cmd)));
        } catch (e) {
            out({ id: cmd.id, error: String(e && (e.stack || e.message) || e) });
        }
    });
});
rl.on("close", () => {
    chain.then(async () => {
        try { if (client) await client.disconnect(); } catch (e) { /* exiting */ }
        process.exit(0);
    });
});
