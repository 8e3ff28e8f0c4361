#!/usr/bin/python3
"""A simulated machine room for net-snmp's snmpd, through its `pass_persist` protocol.

    pass_persist .1.3.6.1.2.1.33 /usr/bin/python3 room_snmp_agent.py STATE.json .1.3.6.1.2.1.33

serves, by numeric OID (Debian ships no UPS-MIB file), one UPS (UPS-MIB, RFC 1628) and one
PDU/environment probe (ENTITY-SENSOR-MIB, RFC 3433, with names from ENTITY-MIB's
entPhysicalName), computed from the knobs in STATE.json (re-read when it changes, so a test or
the demo drives the devices by rewriting that file; scripts/snmp-sim.sh set KEY=VALUE does):

    mains        "on" | "off"          input power present (off: on battery)
    bypass       false | true          output on bypass
    charge       0..100                battery charge, percent
    minutes      >= 0                  estimated runtime, minutes
    load         0..200                output load, percent of capacity
    battery_temp degrees Celsius       battery temperature
    room_temp    degrees Celsius       probe temperature (precision 1: tenths)
    room_humidity percent RH           probe humidity
    phase_amps   [L1, L2, L3]          PDU phase currents (amperes, precision 1)
    malformed    false | true          answer wrong types (strings for numbers)

The prefix argument is the subtree snmpd registered this process for; OIDs outside it are
never answered. Only the standard library is used. The protocol: snmpd writes PING (answer
PONG), `get`/`getnext` + an OID line (answer OID, TYPE, VALUE lines, or NONE), `set` + OID +
value (answer not-writable).
"""
import json
import os
import sys

UPS = "1.3.6.1.2.1.33.1"
ENT_SENSOR = "1.3.6.1.2.1.99.1.1.1"
ENT_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"

DEFAULTS = {
    "mains": "on",
    "bypass": False,
    "charge": 100,
    "minutes": 45,
    "load": 35,
    "battery_temp": 27,
    "room_temp": 24.5,
    "room_humidity": 45,
    "phase_amps": [10.2, 11.0, 9.8],
    "malformed": False,
    "on_battery_since": 0,
}


def key(oid):
    return tuple(int(x) for x in oid.strip(".").split(".") if x != "")


def table(s):
    """The OID -> (type, value) table for state `s`."""
    t = {}
    on_batt = s["mains"] == "off"
    charge = int(s["charge"])
    minutes = int(s["minutes"])
    load = int(s["load"])
    low = on_batt and (charge < 25 or minutes < 5)
    bad = bool(s.get("malformed"))

    def num(oid, typ, v):
        if bad:
            t[oid] = ("string", "n/a")
        else:
            t[oid] = (typ, str(int(v)))

    # upsIdent
    t[UPS + ".1.1.0"] = ("string", "hpcmon")
    t[UPS + ".1.2.0"] = ("string", "SIM-UPS 10k")
    t[UPS + ".1.3.0"] = ("string", "fw 1.2")
    t[UPS + ".1.4.0"] = ("string", "agent 5.9")
    t[UPS + ".1.5.0"] = ("string", "ups-hall-a")
    t[UPS + ".1.6.0"] = ("string", "racks r01-r04")
    # upsBattery: status 2 normal, 3 low, 4 depleted
    status = 4 if on_batt and charge == 0 else (3 if low else 2)
    num(UPS + ".2.1.0", "integer", status)
    num(UPS + ".2.2.0", "integer", s.get("on_battery_seconds", 120 if on_batt else 0))
    num(UPS + ".2.3.0", "integer", minutes)
    num(UPS + ".2.4.0", "integer", charge)
    num(UPS + ".2.5.0", "integer", 545)  # 0.1 V DC
    num(UPS + ".2.6.0", "integer", 0)
    num(UPS + ".2.7.0", "integer", s["battery_temp"])
    # upsInput: 3 lines, 0.1 Hz, V
    num(UPS + ".3.1.0", "counter", 1 if on_batt else 0)
    num(UPS + ".3.2.0", "integer", 3)
    for i in (1, 2, 3):
        num(UPS + ".3.3.1.1.%d" % i, "integer", i)
        num(UPS + ".3.3.1.2.%d" % i, "integer", 0 if on_batt else 500)
        num(UPS + ".3.3.1.3.%d" % i, "integer", 0 if on_batt else 230)
        num(UPS + ".3.3.1.4.%d" % i, "integer", 0 if on_batt else 14)
        num(UPS + ".3.3.1.5.%d" % i, "integer", 0 if on_batt else 3200)
    # upsOutput: source 3 normal, 4 bypass, 5 battery
    source = 5 if on_batt else (4 if s.get("bypass") else 3)
    num(UPS + ".4.1.0", "integer", source)
    num(UPS + ".4.2.0", "integer", 500)
    num(UPS + ".4.3.0", "integer", 3)
    for i in (1, 2, 3):
        num(UPS + ".4.4.1.1.%d" % i, "integer", i)
        num(UPS + ".4.4.1.2.%d" % i, "integer", 230)
        num(UPS + ".4.4.1.3.%d" % i, "integer", 15)
        num(UPS + ".4.4.1.4.%d" % i, "integer", 3300)
        num(UPS + ".4.4.1.5.%d" % i, "integer", load)
    # upsBypass
    num(UPS + ".5.1.0", "integer", 500)
    num(UPS + ".5.2.0", "integer", 1)
    num(UPS + ".5.3.1.1.1", "integer", 1)
    num(UPS + ".5.3.1.2.1", "integer", 230)
    # upsAlarm: one row per active alarm (well-known alarm OIDs under upsWellKnownAlarms)
    alarms = []
    if on_batt:
        alarms.append(UPS + ".6.3.2")  # upsAlarmOnBattery
    if low:
        alarms.append(UPS + ".6.3.3")  # upsAlarmLowBattery
    if load > 100:
        alarms.append(UPS + ".6.3.8")  # upsAlarmOutputOverload
    if s.get("bypass"):
        alarms.append(UPS + ".6.3.9")  # upsAlarmOnBypass
    num(UPS + ".6.1.0", "gauge", len(alarms))
    for i, a in enumerate(alarms, 1):
        num(UPS + ".6.2.1.1.%d" % i, "integer", i)
        t[UPS + ".6.2.1.2.%d" % i] = ("objectid", "." + a)
        t[UPS + ".6.2.1.3.%d" % i] = ("timeticks", "100")
    # upsConfig
    num(UPS + ".9.1.0", "integer", 230)
    num(UPS + ".9.2.0", "integer", 500)
    num(UPS + ".9.3.0", "integer", 230)
    num(UPS + ".9.4.0", "integer", 500)
    num(UPS + ".9.5.0", "integer", 10000)
    num(UPS + ".9.6.0", "integer", 9000)
    num(UPS + ".9.7.0", "integer", 5)

    # The probe: ENTITY-SENSOR-MIB rows (type, scale, precision, value, status, units).
    # type 8 celsius, 9 percentRH, 5 amperes; scale 9 = units; precision = decimals.
    sensors = [
        (1, "Room Temperature", 8, 1, round(float(s["room_temp"]) * 10), "C"),
        (2, "Room Humidity", 9, 0, round(float(s["room_humidity"])), "%RH"),
    ]
    for n, a in enumerate(s["phase_amps"], 1):
        sensors.append((10 + n, "Phase L%d Current" % n, 5, 1, round(float(a) * 10), "A"))
    for idx, name, typ, prec, val, units in sensors:
        num(ENT_SENSOR + ".1.%d" % idx, "integer", typ)
        num(ENT_SENSOR + ".2.%d" % idx, "integer", 9)
        num(ENT_SENSOR + ".3.%d" % idx, "integer", prec)
        num(ENT_SENSOR + ".4.%d" % idx, "integer", val)
        num(ENT_SENSOR + ".5.%d" % idx, "integer", 1)
        t[ENT_SENSOR + ".6.%d" % idx] = ("string", units)
        t[ENT_NAME + ".%d" % idx] = ("string", name)
    return {key(k): v for k, v in t.items()}


class Agent:
    def __init__(self, path, prefix):
        self.path = path
        self.prefix = key(prefix)
        self.mtime = None
        self.rows = []

    def refresh(self):
        try:
            m = os.stat(self.path).st_mtime_ns
        except OSError:
            m = None
        if m == self.mtime and self.rows:
            return
        s = dict(DEFAULTS)
        try:
            with open(self.path) as f:
                s.update(json.load(f))
        except (OSError, ValueError):
            pass  # a half-written file: keep serving the defaults/last table
        self.mtime = m
        t = table(s)
        self.rows = sorted((k, v) for k, v in t.items() if k[: len(self.prefix)] == self.prefix)

    def get(self, oid):
        k = key(oid)
        for rk, v in self.rows:
            if rk == k:
                return rk, v
        return None

    def getnext(self, oid):
        k = key(oid)
        for rk, v in self.rows:
            if rk > k:
                return rk, v
        return None


def main():
    path, prefix = sys.argv[1], sys.argv[2]
    agent = Agent(path, prefix)
    out = sys.stdout
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = sys.stdin.readline().strip()
            try:
                agent.refresh()
                r = agent.get(oid) if cmd == "get" else agent.getnext(oid)
            except Exception as e:  # never die: snmpd would restart us on every request
                sys.stderr.write("room_snmp_agent: %s\n" % e)
                r = None
            if r is None:
                out.write("NONE\n")
            else:
                k, (typ, val) = r
                out.write(".%s\n%s\n%s\n" % (".".join(map(str, k)), typ, val))
        elif cmd == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out.write("not-writable\n")
        elif cmd == "":
            break
        out.flush()


if __name__ == "__main__":
    main()
