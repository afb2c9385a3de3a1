"""kprof: per-command kernel-footprint profiler for OpenAPS."""
__version__ = "0.1.0"
