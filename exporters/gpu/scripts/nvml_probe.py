#!/usr/bin/env python3
"""What NVML itself answers on this machine, field by field, as JSON (nvidia-ml-py, i.e. the
`pynvml` module). Run by real-gpu-check.sh as root and as an unprivileged user, so the fake
backend can be made to answer (and fail) the way a real GPU does. Never changes a setting.

    nvml_probe.py > probe.json             every field, as NVML answers it
    nvml_probe.py --timing > timing.json   how long each NVML call takes (median of 20, in us)
    nvml_probe.py --rss > rss.json         this process's RSS after each NVML step, and whether
                                           libcuda got mapped (which call loads it)
"""
import json
import sys
import time

import pynvml as N


def call(fn, *args):
    """The value, or the NVML error's name (NotSupported, NoPermission, ...)."""
    try:
        v = fn(*args)
    except N.NVMLError as e:
        return {"error": type(e).__name__.replace("NVMLError_", ""), "text": str(e)}
    except Exception as e:  # noqa: BLE001 - a binding missing in this pynvml
        return {"error": type(e).__name__, "text": str(e)}
    return plain(v)


def plain(v):
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if hasattr(v, "_fields_"):
        return {k: plain(getattr(v, k)) for k, *_ in v._fields_ if not k.startswith("_")}
    try:
        return [plain(x) for x in v]
    except TypeError:
        return repr(v)


def gpm(h, secs=0.5):
    out = {"support": call(N.nvmlGpmQueryDeviceSupport, h)}
    try:
        s1, s2 = N.nvmlGpmSampleAlloc(), N.nvmlGpmSampleAlloc()
        N.nvmlGpmSampleGet(h, s1)
        time.sleep(secs)
        N.nvmlGpmSampleGet(h, s2)
        ids = {
            "GRAPHICS_UTIL": 1, "SM_UTIL": 2, "SM_OCCUPANCY": 3, "INTEGER_UTIL": 4,
            "ANY_TENSOR_UTIL": 5, "DFMA_TENSOR_UTIL": 6, "HMMA_TENSOR_UTIL": 7,
            "IMMA_TENSOR_UTIL": 9, "DRAM_BW_UTIL": 10, "FP64_UTIL": 11, "FP32_UTIL": 12,
            "FP16_UTIL": 13, "PCIE_TX_PER_SEC": 20, "PCIE_RX_PER_SEC": 21,
        }
        g = N.c_nvmlGpmMetricsGet_t()
        g.version = N.NVML_GPM_METRICS_GET_VERSION
        g.numMetrics = len(ids)
        g.sample1, g.sample2 = s1, s2
        for i, mid in enumerate(ids.values()):
            g.metrics[i].metricId = mid
        N.nvmlGpmMetricsGet(g)
        out["metrics"] = {
            name: {"value": g.metrics[i].value, "nvmlReturn": g.metrics[i].nvmlReturn}
            for i, name in enumerate(ids)
        }
        N.nvmlGpmSampleFree(s1)
        N.nvmlGpmSampleFree(s2)
    except Exception as e:  # noqa: BLE001
        out["metrics_error"] = f"{type(e).__name__}: {e}"
    return out


def device(i):
    h = N.nvmlDeviceGetHandleByIndex(i)
    d = {}
    for name in [
        "nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetSerial", "nvmlDeviceGetPciInfo",
        "nvmlDeviceGetMinorNumber", "nvmlDeviceGetVbiosVersion", "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetEncoderUtilization", "nvmlDeviceGetDecoderUtilization",
        "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetBAR1MemoryInfo", "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetPerformanceState", "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetSupportedClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
        "nvmlDeviceGetSupportedClocksThrottleReasons", "nvmlDeviceGetEccMode",
        "nvmlDeviceGetRemappedRows", "nvmlDeviceGetRetiredPagesPendingStatus",
        "nvmlDeviceGetCurrPcieLinkGeneration", "nvmlDeviceGetCurrPcieLinkWidth",
        "nvmlDeviceGetMaxPcieLinkGeneration", "nvmlDeviceGetMaxPcieLinkWidth",
        "nvmlDeviceGetPcieReplayCounter", "nvmlDeviceGetMigMode", "nvmlDeviceGetMaxMigDeviceCount",
        "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses",
        "nvmlDeviceGetFanSpeed", "nvmlDeviceGetNumFans", "nvmlDeviceGetPersistenceMode",
        "nvmlDeviceGetComputeMode", "nvmlDeviceGetArchitecture", "nvmlDeviceGetCudaComputeCapability",
        "nvmlDeviceGetMemoryBusWidth", "nvmlDeviceGetIndex",
    ]:
        fn = getattr(N, name, None)
        d[name] = call(fn, h) if fn else {"error": "missing in pynvml"}
    d["temperature_gpu"] = call(N.nvmlDeviceGetTemperature, h, N.NVML_TEMPERATURE_GPU)
    for t in ["SLOWDOWN", "SHUTDOWN", "MEM_MAX", "GPU_MAX"]:
        d[f"threshold_{t}"] = call(N.nvmlDeviceGetTemperatureThreshold, h,
                                   getattr(N, f"NVML_TEMPERATURE_THRESHOLD_{t}"))
    for c in ["GRAPHICS", "SM", "MEM", "VIDEO"]:
        d[f"clock_{c}"] = call(N.nvmlDeviceGetClockInfo, h, getattr(N, f"NVML_CLOCK_{c}"))
        d[f"max_clock_{c}"] = call(N.nvmlDeviceGetMaxClockInfo, h, getattr(N, f"NVML_CLOCK_{c}"))
    for cause in ["MULTIPLE_SINGLE_BIT_ECC_ERRORS", "DOUBLE_BIT_ECC_ERROR"]:
        d[f"retired_pages_{cause}"] = call(N.nvmlDeviceGetRetiredPages, h,
                                           getattr(N, f"NVML_PAGE_RETIREMENT_CAUSE_{cause}"))
    for et in ["CORRECTED", "UNCORRECTED"]:
        for ct in ["VOLATILE_ECC", "AGGREGATE_ECC"]:
            d[f"ecc_{et}_{ct}"] = call(N.nvmlDeviceGetTotalEccErrors, h,
                                       getattr(N, f"NVML_MEMORY_ERROR_TYPE_{et}"), getattr(N, f"NVML_{ct}"))
    d["nvlink"] = {}
    for link in range(18 + 2):
        st = call(N.nvmlDeviceGetNvLinkState, h, link)
        d["nvlink"][link] = {"state": st}
        if not (isinstance(st, dict) and "error" in st):
            d["nvlink"][link]["version"] = call(N.nvmlDeviceGetNvLinkVersion, h, link)
            d["nvlink"][link]["remote_pci"] = call(N.nvmlDeviceGetNvLinkRemotePciInfo, h, link)
    d["pcie_tx"] = call(N.nvmlDeviceGetPcieThroughput, h, N.NVML_PCIE_UTIL_TX_BYTES)
    d["supported_event_types"] = call(N.nvmlDeviceGetSupportedEventTypes, h)
    try:
        es = N.nvmlEventSetCreate()
        d["register_xid"] = call(N.nvmlDeviceRegisterEvents, h, N.nvmlEventTypeXidCriticalError, es)
        N.nvmlEventSetFree(es)
    except Exception as e:  # noqa: BLE001
        d["register_xid"] = {"error": type(e).__name__, "text": str(e)}
    d["gpm"] = gpm(h)
    d["process_utilization"] = call(N.nvmlDeviceGetProcessUtilization, h, 0)
    return d


def timing():
    """Median wall time of each per-scrape NVML call, so the exporter can skip or cache the
    slow ones."""
    N.nvmlInit()
    h = N.nvmlDeviceGetHandleByIndex(0)
    calls = {
        "name": (N.nvmlDeviceGetName, h), "uuid": (N.nvmlDeviceGetUUID, h),
        "serial": (N.nvmlDeviceGetSerial, h), "pci_info": (N.nvmlDeviceGetPciInfo, h),
        "vbios": (N.nvmlDeviceGetVbiosVersion, h), "minor": (N.nvmlDeviceGetMinorNumber, h),
        "utilization": (N.nvmlDeviceGetUtilizationRates, h),
        "encoder": (N.nvmlDeviceGetEncoderUtilization, h),
        "decoder": (N.nvmlDeviceGetDecoderUtilization, h),
        "memory": (N.nvmlDeviceGetMemoryInfo, h), "bar1": (N.nvmlDeviceGetBAR1MemoryInfo, h),
        "temperature": (N.nvmlDeviceGetTemperature, h, N.NVML_TEMPERATURE_GPU),
        "threshold": (N.nvmlDeviceGetTemperatureThreshold, h, N.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN),
        "fan": (N.nvmlDeviceGetFanSpeed, h), "num_fans": (N.nvmlDeviceGetNumFans, h),
        "power": (N.nvmlDeviceGetPowerUsage, h), "power_limit": (N.nvmlDeviceGetEnforcedPowerLimit, h),
        "energy": (N.nvmlDeviceGetTotalEnergyConsumption, h),
        "clock_sm": (N.nvmlDeviceGetClockInfo, h, N.NVML_CLOCK_SM),
        "max_clock_sm": (N.nvmlDeviceGetMaxClockInfo, h, N.NVML_CLOCK_SM),
        "pstate": (N.nvmlDeviceGetPerformanceState, h),
        "throttle": (N.nvmlDeviceGetCurrentClocksEventReasons, h),
        "throttle_supported": (N.nvmlDeviceGetSupportedClocksEventReasons, h),
        "ecc_mode": (N.nvmlDeviceGetEccMode, h),
        "ecc_total": (N.nvmlDeviceGetTotalEccErrors, h, N.NVML_MEMORY_ERROR_TYPE_CORRECTED, N.NVML_VOLATILE_ECC),
        "retired_pages": (N.nvmlDeviceGetRetiredPages, h, N.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR),
        "retired_pending": (N.nvmlDeviceGetRetiredPagesPendingStatus, h),
        "remapped_rows": (N.nvmlDeviceGetRemappedRows, h),
        "pcie_gen": (N.nvmlDeviceGetCurrPcieLinkGeneration, h),
        "pcie_width": (N.nvmlDeviceGetCurrPcieLinkWidth, h),
        "pcie_max_gen": (N.nvmlDeviceGetMaxPcieLinkGeneration, h),
        "pcie_replay": (N.nvmlDeviceGetPcieReplayCounter, h),
        "nvlink_state_0": (N.nvmlDeviceGetNvLinkState, h, 0),
        "mig_mode": (N.nvmlDeviceGetMigMode, h),
        "processes": (N.nvmlDeviceGetComputeRunningProcesses, h),
        "graphics_processes": (N.nvmlDeviceGetGraphicsRunningProcesses, h),
        "handle_by_index": (N.nvmlDeviceGetHandleByIndex, 0),
        "device_count": (N.nvmlDeviceGetCount,),
        "driver_version": (N.nvmlSystemGetDriverVersion,),
        "gpm_support": (N.nvmlGpmQueryDeviceSupport, h),
        "memory_temp_field": (N.nvmlDeviceGetFieldValues, h, [getattr(N, "NVML_FI_DEV_MEMORY_TEMP", 82)]),
        "cuda_driver_version": (N.nvmlSystemGetCudaDriverVersion,),
        "max_mig_devices": (N.nvmlDeviceGetMaxMigDeviceCount, h),
        "power_state": (N.nvmlDeviceGetPowerState, h),
    }
    out = {}
    for name, (fn, *args) in calls.items():
        ts = []
        for _ in range(20):
            t = time.perf_counter()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - timing NotSupported answers too
                pass
            ts.append((time.perf_counter() - t) * 1e6)
        ts.sort()
        out[name] = {"median_us": round(ts[10], 1), "max_us": round(ts[-1], 1)}
    try:
        s = N.nvmlGpmSampleAlloc()
        ts = []
        for _ in range(20):
            t = time.perf_counter()
            N.nvmlGpmSampleGet(h, s)
            ts.append((time.perf_counter() - t) * 1e6)
        ts.sort()
        out["gpm_sample_get"] = {"median_us": round(ts[10], 1), "max_us": round(ts[-1], 1)}
    except Exception as e:  # noqa: BLE001
        out["gpm_sample_get"] = str(e)
    try:
        s1, s2 = N.nvmlGpmSampleAlloc(), N.nvmlGpmSampleAlloc()
        N.nvmlGpmSampleGet(h, s1)
        time.sleep(0.1)
        N.nvmlGpmSampleGet(h, s2)
        g = N.c_nvmlGpmMetricsGet_t()
        g.version = N.NVML_GPM_METRICS_GET_VERSION
        g.numMetrics = 8
        g.sample1, g.sample2 = s1, s2
        for i, mid in enumerate([1, 2, 3, 5, 10, 11, 12, 13]):
            g.metrics[i].metricId = mid
        ts = []
        for _ in range(20):
            t = time.perf_counter()
            N.nvmlGpmMetricsGet(g)
            ts.append((time.perf_counter() - t) * 1e6)
        ts.sort()
        out["gpm_metrics_get_8"] = {"median_us": round(ts[10], 1), "max_us": round(ts[-1], 1)}
    except Exception as e:  # noqa: BLE001
        out["gpm_metrics_get_8"] = str(e)
    t = time.perf_counter()
    N.nvmlShutdown()
    out["shutdown_us"] = round((time.perf_counter() - t) * 1e6, 1)
    t = time.perf_counter()
    N.nvmlInit()
    out["init_us"] = round((time.perf_counter() - t) * 1e6, 1)
    N.nvmlShutdown()
    print(json.dumps(out, indent=1))


def rss_steps():
    """RSS (KiB) of this process after each step the exporter takes, and which libraries are
    mapped: where NVML's memory goes, and which call maps libcuda."""
    def rss():
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))

    def mapped(name):
        return any(name in l for l in open("/proc/self/maps"))

    steps = []

    def step(name, fn=None, *args):
        err = None
        if fn is not None:
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001
                err = f"{type(e).__name__}: {e}"
        steps.append({"step": name, "rss_kib": rss(), "libnvidia-ml": mapped("libnvidia-ml"),
                      "libcuda": mapped("libcuda"), **({"error": err} if err else {})})

    step("python with pynvml imported")
    step("nvmlInit", N.nvmlInit)
    h = N.nvmlDeviceGetHandleByIndex(0)
    step("device handle")
    step("driver and NVML version", lambda: (N.nvmlSystemGetDriverVersion(), N.nvmlSystemGetNVMLVersion()))
    step("identity (uuid, name, pci, serial, vbios, minor)", lambda: [
        f(h) for f in (N.nvmlDeviceGetUUID, N.nvmlDeviceGetName, N.nvmlDeviceGetPciInfo,
                       N.nvmlDeviceGetSerial, N.nvmlDeviceGetVbiosVersion, N.nvmlDeviceGetMinorNumber)])
    step("nvmlSystemGetCudaDriverVersion", N.nvmlSystemGetCudaDriverVersion)
    step("per-scrape reads", lambda: [
        N.nvmlDeviceGetUtilizationRates(h), N.nvmlDeviceGetMemoryInfo(h), N.nvmlDeviceGetPowerUsage(h),
        N.nvmlDeviceGetTemperature(h, N.NVML_TEMPERATURE_GPU), N.nvmlDeviceGetComputeRunningProcesses(h)])
    step("energy, BAR1, ECC and MIG mode", lambda: [
        N.nvmlDeviceGetTotalEnergyConsumption(h), N.nvmlDeviceGetBAR1MemoryInfo(h),
        N.nvmlDeviceGetEccMode(h), N.nvmlDeviceGetMigMode(h)])
    es = None

    def register():
        nonlocal es
        es = N.nvmlEventSetCreate()
        N.nvmlDeviceRegisterEvents(h, N.nvmlEventTypeXidCriticalError, es)
    step("XID event set registered", register)
    step("GPM sample", lambda: N.nvmlGpmSampleGet(h, N.nvmlGpmSampleAlloc()))
    if es is not None:
        N.nvmlEventSetFree(es)
    N.nvmlShutdown()
    print(json.dumps(steps, indent=1))


def main():
    if "--timing" in sys.argv:
        timing()
        return
    if "--rss" in sys.argv:
        rss_steps()
        return
    out = {"argv": sys.argv}
    try:
        N.nvmlInit()
    except N.NVMLError as e:
        print(json.dumps({"init_error": str(e)}))
        return
    out["driver"] = call(N.nvmlSystemGetDriverVersion)
    out["nvml"] = call(N.nvmlSystemGetNVMLVersion)
    out["cuda"] = call(N.nvmlSystemGetCudaDriverVersion)
    n = N.nvmlDeviceGetCount()
    out["devices"] = [device(i) for i in range(n)]
    N.nvmlShutdown()
    print(json.dumps(out, indent=1, default=repr))


main()
