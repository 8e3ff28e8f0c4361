#!/usr/bin/env python3
"""Generates dashboards/gpu.json (Grafana, schemaVersion 39): cluster, node, GPU and job views.

Run from the repo root: python3 exporters/gpu/contrib/gen-dashboard.py > dashboards/gpu.json
"""
import json

DS = {"type": "prometheus", "uid": "${datasource}"}
panels = []
pid = [0]
y = [0]


def nid():
    pid[0] += 1
    return pid[0]


def row(title):
    panels.append({"type": "row", "title": title, "id": nid(), "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y[0]}, "panels": []})
    y[0] += 1


def panel(kind, title, targets, w=8, h=8, x=0, unit=None, desc=None, newline=False, extra=None):
    p = {
        "type": kind, "title": title, "id": nid(), "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y[0]},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": l,
             **({"format": "table", "instant": True} if kind == "table" else {})}
            for i, (e, l) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if desc:
        p["description"] = desc
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"}}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area"}
    if extra:
        p.update(extra)
    panels.append(p)
    if x + w >= 24:
        y[0] += h


# ---- cluster ----
row("Cluster")
panel("stat", "GPUs", [("sum(gpu_devices)", "")], w=4, h=4)
panel("stat", "GPUs down", [("count(gpu_up == 0) or vector(0)", "")], w=4, h=4, x=4,
      desc="GPUs that fell off the bus, need a reset or hang (gpu_up 0).")
panel("stat", "Nodes with NVML down",
      [("count(gpu_nvml_up == 0 and on (instance) max_over_time(gpu_nvml_up[1d]) == 1) or vector(0)", "")],
      w=4, h=4, x=8)
panel("stat", "Mean utilisation", [("avg(gpu_utilization_ratio)", "")], w=4, h=4, x=12, unit="percentunit")
panel("stat", "Power", [("sum(gpu_power_usage_watts)", "")], w=4, h=4, x=16, unit="watt")
panel("stat", "Allocated but idle GPUs",
      [("count(instance_uuid_jobid:gpu_utilization_ratio:join < 0.01) or vector(0)", "")], w=4, h=4, x=20,
      desc="GPUs held by a Slurm job with under 1% utilisation right now.")
panel("timeseries", "Utilisation by node", [("instance:gpu_utilization_ratio:avg", "{{instance}}")],
      w=12, unit="percentunit")
panel("timeseries", "XID errors (1h) by XID", [("sum by (xid) (increase(gpu_xid_errors_total[1h]))", "XID {{xid}}")],
      w=12, x=12)
panel("table", "GPUs down", [("gpu_up_reason == 1", "")], w=12, h=6)
panel("table", "Allocated but idle (under 1%)",
      [("instance_uuid_jobid:gpu_utilization_ratio:join < 0.01", "")], w=12, h=6, x=12)

# ---- node ----
row("Node $instance")
node = 'instance=~"$instance"'
joinidx = ' * on (instance, uuid) group_left (index) gpu_info'
panel("timeseries", "GPU utilisation", [(f"gpu_utilization_ratio{{{node}}}{joinidx}", "GPU {{index}}")],
      unit="percentunit")
panel("timeseries", "Memory used", [(f"gpu_memory_used_bytes{{{node}}}{joinidx}", "GPU {{index}}")],
      x=8, unit="bytes")
panel("timeseries", "Power", [(f"gpu_power_usage_watts{{{node}}}{joinidx}", "GPU {{index}}")],
      x=16, unit="watt")
panel("timeseries", "Temperature", [(f"gpu_temperature_celsius{{{node}}}{joinidx}", "GPU {{index}}"),
                                    (f"gpu_memory_temperature_celsius{{{node}}}{joinidx}", "GPU {{index}} HBM")],
      unit="celsius")
panel("timeseries", "SM clock", [(f'gpu_clock_hertz{{{node},clock="sm"}}{joinidx}', "GPU {{index}}")],
      x=8, unit="hertz")
panel("timeseries", "Active throttle reasons",
      [(f'sum by (reason) (gpu_throttle_reason_active{{{node}}})', "{{reason}}")], x=16)
panel("table", "GPUs and jobs",
      [(f"gpu_info{{{node}}}", ""), (f"gpu_slurm_job_info{{{node}}}", "")], w=24, h=6)

# ---- GPU ----
row("GPU $uuid")
g = 'uuid=~"$uuid"'
panel("timeseries", "Utilisation", [(f"gpu_utilization_ratio{{{g}}}", "GPU"),
                                    (f"gpu_memory_utilization_ratio{{{g}}}", "memory"),
                                    (f"gpu_encoder_utilization_ratio{{{g}}}", "encoder"),
                                    (f"gpu_decoder_utilization_ratio{{{g}}}", "decoder")], unit="percentunit")
panel("timeseries", "Memory", [(f"gpu_memory_used_bytes{{{g}}}", "used"),
                               (f"gpu_memory_total_bytes{{{g}}}", "total"),
                               (f"gpu_bar1_memory_used_bytes{{{g}}}", "BAR1 used")], x=8, unit="bytes")
panel("timeseries", "Power and energy", [(f"gpu_power_usage_watts{{{g}}}", "draw"),
                                         (f"gpu_power_limit_watts{{{g}}}", "limit"),
                                         (f"rate(gpu_energy_joules_total{{{g}}}[5m])", "energy rate")],
      x=16, unit="watt")
panel("timeseries", "Temperature", [(f"gpu_temperature_celsius{{{g}}}", "GPU"),
                                    (f"gpu_memory_temperature_celsius{{{g}}}", "HBM"),
                                    (f"gpu_temperature_slowdown_threshold_celsius{{{g}}}", "slowdown")],
      unit="celsius")
panel("timeseries", "Clocks", [(f"gpu_clock_hertz{{{g}}}", "{{clock}}"),
                               (f"gpu_performance_state{{{g}}}", "P-state")], x=8, unit="hertz")
panel("timeseries", "Throttle reasons", [(f"gpu_throttle_reason_active{{{g}}} == 1", "{{reason}}")], x=16)
panel("timeseries", "ECC errors (rate)", [(f"rate(gpu_ecc_errors_total{{{g},counter=\"volatile\"}}[5m])", "{{type}}")])
panel("timeseries", "Remapped rows", [(f"gpu_remapped_rows{{{g}}}", "{{type}}"),
                                      (f"gpu_remapped_rows_pending{{{g}}}", "pending"),
                                      (f"gpu_retired_pages{{{g}}}", "retired {{cause}}")], x=8)
panel("timeseries", "PCIe and NVLink errors (rate)",
      [(f"rate(gpu_pcie_replays_total{{{g}}}[5m])", "PCIe replays"),
       (f"sum by (type) (rate(gpu_nvlink_errors_total{{{g}}}[5m]))", "NVLink {{type}}")], x=16)
panel("timeseries", "Processes", [(f"gpu_processes{{{g}}}", "processes"),
                                  (f"gpu_processes_memory_used_bytes{{{g}}}", "their memory")])
panel("timeseries", "PCIe link", [(f"gpu_pcie_link_generation{{{g}}}", "gen"),
                                  (f"gpu_pcie_link_width{{{g}}}", "width"),
                                  (f"gpu_nvlink_up{{{g}}}", "NVLink {{link}} up")], x=8)
panel("table", "MIG devices", [(f"gpu_mig_info{{{g}}}", ""), (f"gpu_mig_memory_used_bytes{{{g}}}", "")],
      x=16)

# ---- job ----
row("Job $jobid")
j = 'jobid=~"$jobid"'
panel("timeseries", "Job GPU utilisation", [(f"jobid:gpu_utilization_ratio:avg{{{j}}}", "job {{jobid}} ({{user}})")],
      unit="percentunit")
panel("timeseries", "Per GPU of the job",
      [(f"instance_uuid_jobid:gpu_utilization_ratio:join{{{j}}}", "{{instance}} {{uuid}}")], x=8, unit="percentunit")
panel("timeseries", "Job GPU memory and power", [(f"jobid:gpu_memory_used_bytes:sum{{{j}}}", "memory {{jobid}}"),
                                                 (f"jobid:gpu_power_usage_watts:sum{{{j}}}", "power {{jobid}} (W)")],
      x=16, unit="bytes")
panel("table", "Jobs on GPUs", [("jobid:gpus:count", ""), ("jobid:gpu_utilization_ratio:avg", "")], w=24, h=8)


def var(name, query, label, multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
            "includeAll": True, "multi": multi, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1}


dash = {
    "uid": "hpcmon-gpu",
    "title": "hpcmon / GPUs",
    "tags": ["hpcmon", "gpu"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "30s",
    "timezone": "",
    "annotations": {"list": []},
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0},
        var("instance", "label_values(gpu_info, instance)", "Node"),
        var("uuid", 'label_values(gpu_info{instance=~"$instance"}, uuid)', "GPU"),
        var("jobid", "label_values(gpu_slurm_job_info, jobid)", "Job"),
    ]},
    "panels": panels,
}
print(json.dumps(dash, indent=2))
