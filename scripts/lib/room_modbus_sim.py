#!/usr/bin/python3
"""A Modbus TCP server for tests, benchmarks and the demo: Debian's python3-pymodbus on
127.0.0.1, with register values taken from a JSON state file that is re-read when it
changes (so a test drives the devices by rewriting it; scripts/modbus-sim.sh set does).

    /usr/bin/python3 room_modbus_sim.py PORT STATE.json

STATE.json:
    {"units": {"1": {"holding": {"0": 235, "10": [16968, 0]},   # address -> value or list
                     "input":   {...}, "coils": {"0": 1}, "discrete": {...}}},
     "delay": 0.0}                                             # seconds before each answer

Addresses are protocol (PDU) addresses, 0-based: holding register "40001" is address 0
(the context runs in pymodbus' zero_mode, so what is asked is what is read). A read that
touches an address the unit does not have answers exception 2 (illegal data address); a unit
that is not in the file answers nothing pymodbus-side beyond its gateway exception.
Without a state file the units of the built-in templates are served (see DEFAULT_UNITS:
1 = temperature/humidity transmitter, 2 = 3-phase power meter, 3 = precision air conditioner).
"""
import asyncio
import json
import logging
import os
import struct
import sys
import time

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext
from pymodbus.datastore.store import BaseModbusDataBlock
from pymodbus.server import StartAsyncTcpServer


def f32(v):
    """float32, big-endian words (high word first)."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", v))
    return [hi, lo]


# The register maps of exporters/ipmi/modules/modbus/*.yml, with plausible readings.
DEFAULT_UNITS = {
    "1": {"input": {"0": 235, "1": 452}},  # 23.5 C, 45.2 %RH
    "2": {
        "input": {
            "0": f32(231.5) + f32(229.8) + f32(230.4),  # V L1..L3
            "6": f32(12.5) + f32(11.0) + f32(9.75),  # A
            "12": f32(2890.0) + f32(2530.0) + f32(2240.0),  # W
            "70": f32(50.0),  # Hz
            "342": f32(12345.5),  # kWh
        }
    },
    "3": {
        "holding": {
            "0": 1,  # mode: cooling
            "1": 245, "2": 480, "3": 180, "4": 220,  # return/supply temps, humidity, setpoint
            "5": 0,  # active alarms
            "6": [0x5A40, 0x0001],  # compressor hours 0x00015A40 = 88640, low word first
        },
        "coils": {"0": 1},  # unit on
    },
}

TABLES = {"d": "discrete", "c": "coils", "h": "holding", "i": "input"}


class State:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.units = {}
        self.delay = 0.0
        self.refresh()

    def refresh(self):
        try:
            m = os.stat(self.path).st_mtime_ns
        except OSError:
            m = None
        if m is not None and m == self.mtime:
            return
        self.mtime = m
        data = None
        if m is not None:
            try:
                with open(self.path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                return  # half-written: keep the last state
        units = {}
        src = DEFAULT_UNITS if data is None else data.get("units", {})
        for unit, tables in src.items():
            u = units.setdefault(int(unit), {t: {} for t in TABLES.values()})
            for table, regs in tables.items():
                for addr, val in regs.items():
                    vals = val if isinstance(val, list) else [val]
                    for i, v in enumerate(vals):
                        u[table][int(addr) + i] = int(v) & 0xFFFF
        self.units = units
        self.delay = float((data or {}).get("delay", 0.0))


class Block(BaseModbusDataBlock):
    """One table of one unit, read from the shared state."""

    def __init__(self, state, unit, table):
        self.state, self.unit, self.table = state, unit, table
        self.default_value = 0
        self.values = {}
        self.address = 0

    def regs(self):
        self.state.refresh()
        return self.state.units.get(self.unit, {}).get(self.table, {})

    def validate(self, address, count=1):
        r = self.regs()
        return count > 0 and all(a in r for a in range(address, address + count))

    def getValues(self, address, count=1):  # noqa: N802 (pymodbus' name)
        if self.state.delay > 0:
            time.sleep(self.state.delay)  # a slow device: blocks the whole server, on purpose
        r = self.regs()
        vals = [r.get(a, 0) for a in range(address, address + count)]
        if self.table in ("coils", "discrete"):
            return [bool(v) for v in vals]
        return vals

    def setValues(self, address, values):  # noqa: N802
        pass  # read-only device


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    logging.basicConfig(level=logging.WARNING)
    state = State(path)
    slaves = {}
    for unit in range(1, 248):
        slaves[unit] = ModbusSlaveContext(
            zero_mode=True,
            di=Block(state, unit, "discrete"),
            co=Block(state, unit, "coils"),
            hr=Block(state, unit, "holding"),
            ir=Block(state, unit, "input"),
        )
    ctx = ModbusServerContext(slaves=slaves, single=False)
    print("modbus sim on 127.0.0.1:%d" % port, flush=True)
    asyncio.run(StartAsyncTcpServer(context=ctx, address=("127.0.0.1", port)))


if __name__ == "__main__":
    main()
