#!/usr/bin/python3
"""A pymodbus server the Go interop tests of adapters/modbus talk to.

It serves several unit ids over Modbus/TCP or RTU (a serial device such as
one end of a socat pty pair) and encodes its initial values with pymodbus's
own BinaryPayloadBuilder, so that the Go codec is checked against an
independent implementation of byte and word order.

Usage: pymodbus_server.py SPEC.json

SPEC is a JSON object:

  {"mode": "tcp", "host": "127.0.0.1", "port": 0}
  {"mode": "rtu", "device": "/dev/pts/7", "baudrate": 19200, "parity": "E",
   "stopbits": 1}

plus "units": [1, 2], "size": 1000 (registers and bits per table) and
"values": a list of
  {"unit": 1, "table": "holding_register", "address": 10, "type": "float32",
   "value": 21.5, "byte_order": "big", "word_order": "little"}
  {"unit": 1, "table": "coil", "address": 3, "value": true}

Once serving it prints one line to stdout, "READY tcp HOST:PORT" or
"READY rtu DEVICE", and runs until it is killed or stdin closes.

Written for Debian's python3-pymodbus 3.0 (run with /usr/bin/python3).
"""

import asyncio
import json
import sys

from pymodbus.constants import Endian
from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.payload import BinaryPayloadBuilder
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.transaction import ModbusRtuFramer

# Function codes pymodbus uses to find a table in a slave context.
TABLE_FC = {
    "coil": 1,
    "discrete_input": 2,
    "holding_register": 3,
    "input_register": 4,
}

ADDERS = {
    "int16": "add_16bit_int",
    "uint16": "add_16bit_uint",
    "int32": "add_32bit_int",
    "uint32": "add_32bit_uint",
    "float32": "add_32bit_float",
    "float64": "add_64bit_float",
}


def order(name):
    return Endian.Little if name == "little" else Endian.Big


def registers(v):
    builder = BinaryPayloadBuilder(
        byteorder=order(v.get("byte_order", "big")),
        wordorder=order(v.get("word_order", "big")),
    )
    value = v["value"]
    if not v["type"].startswith("float"):
        value = int(value)
    getattr(builder, ADDERS[v["type"]])(value)
    return builder.to_registers()


def build_context(spec):
    size = spec.get("size", 1000)
    slaves = {}
    for unit in spec["units"]:
        slaves[unit] = ModbusSlaveContext(
            co=ModbusSequentialDataBlock(0, [False] * size),
            di=ModbusSequentialDataBlock(0, [False] * size),
            hr=ModbusSequentialDataBlock(0, [0] * size),
            ir=ModbusSequentialDataBlock(0, [0] * size),
            zero_mode=True,
        )
    for v in spec.get("values", []):
        fc = TABLE_FC[v["table"]]
        if v["table"] in ("coil", "discrete_input"):
            values = [bool(v["value"])]
        else:
            values = registers(v)
        slaves[v["unit"]].setValues(fc, v["address"], values)
    return ModbusServerContext(slaves=slaves, single=False)


async def watch_stdin():
    """Return when stdin closes, so the server dies with its parent."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def main(spec):
    context = build_context(spec)
    if spec["mode"] == "tcp":
        server = await StartAsyncTcpServer(
            context=context,
            address=(spec.get("host", "127.0.0.1"), spec.get("port", 0)),
            allow_reuse_address=True,
            defer_start=True,
        )
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        host, port = server.server.sockets[0].getsockname()[:2]
        print(f"READY tcp {host}:{port}", flush=True)
    elif spec["mode"] == "rtu":
        server = await StartAsyncSerialServer(
            context=context,
            framer=ModbusRtuFramer,
            port=spec["device"],
            baudrate=spec.get("baudrate", 19200),
            parity=spec.get("parity", "E"),
            stopbits=spec.get("stopbits", 1),
            bytesize=8,
            timeout=0.05,
            defer_start=True,
        )
        await server.start()
        task = asyncio.create_task(server.serve_forever())
        print(f"READY rtu {spec['device']}", flush=True)
    else:
        raise SystemExit(f"unknown mode {spec['mode']!r}")
    await watch_stdin()
    task.cancel()
    await server.shutdown()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        asyncio.run(main(json.load(f)))
