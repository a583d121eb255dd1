"""Joins the C and PyTorch benchmark lines into one Markdown table.

Input lines: KIND<TAB>name<TAB>ms<TAB>flops with KIND one of PEAK, C, TORCH.
"speedup" is PyTorch time / C time, so above 1 means oddone is faster.
"""
import os
import platform
import sys


def main(path):
    peak_gflops = None
    c_rows, torch_rows, order = {}, {}, []
    with open(path) as stream:
        for line in stream:
            kind, name, ms, flops = line.rstrip("\n").split("\t")
            ms, flops = float(ms), float(flops)
            if kind == "PEAK":
                peak_gflops = flops / (ms * 1e6)
            elif kind == "C":
                c_rows[name] = (ms, flops)
                order.append(name)
            elif kind == "TORCH":
                torch_rows[name] = (ms, flops)
    threads = os.environ.get("OMP_NUM_THREADS", "?")
    print(f"Machine: {platform.processor() or platform.machine()}, {threads} threads, "
          f"measured FP32 peak {peak_gflops:.1f} GFLOP/s (bench_peak)\n")
    print("| case | oddone ms | GFLOP/s | % of peak | PyTorch ms | speedup |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in order:
        ms, flops = c_rows[name]
        gflops = flops / (ms * 1e6) if flops else None
        cells = [name, f"{ms:.3f}",
                 f"{gflops:.1f}" if gflops else "",
                 f"{100 * gflops / peak_gflops:.0f} %" if gflops and peak_gflops else ""]
        if name in torch_rows:
            torch_ms = torch_rows[name][0]
            cells += [f"{torch_ms:.3f}", f"{torch_ms / ms:.2f}x"]
        else:
            cells += ["", ""]
        print("| " + " | ".join(cells) + " |")
    missing = sorted(set(torch_rows) - set(c_rows))
    if missing:
        print(f"\nPyTorch cases without a C counterpart: {', '.join(missing)}")


if __name__ == "__main__":
    main(sys.argv[1])
