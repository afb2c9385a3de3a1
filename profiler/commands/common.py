"""Old home of the report builders, kept so that existing imports keep working: the builders now live in
profiler.render.sections and profiler.render.run_report, the output pipeline in profiler.commands.pipeline."""
from __future__ import annotations

from profiler.commands.pipeline import diff_report, write_output
from profiler.render.run_report import RIG_DIFFERENCE, error_path_report, run_report
from profiler.render.sections import (BLIND_SPOTS, EMULATED, RADIO_FAULTS, describe_end, device_section,
                                      device_users_section, diff_summary, footprint_facts, footprint_warnings,
                                      poll_period_text, spi_device_section, spi_served_text, variation_section)

__all__ = ["BLIND_SPOTS", "EMULATED", "RADIO_FAULTS", "RIG_DIFFERENCE", "describe_end", "device_section",
           "device_users_section", "diff_report", "diff_summary", "error_path_report", "footprint_facts",
           "footprint_warnings", "poll_period_text", "run_report", "spi_device_section", "spi_served_text",
           "variation_section", "write_output"]
