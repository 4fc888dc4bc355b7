"""The fresh-process measurement helper: peak memory and failures."""

from regkit.workbook.measure import measure_in_fresh_process


def test_fresh_process_measurement_sees_the_peak_of_a_large_temporary():
    result = measure_in_fresh_process(
        "regkit.workbook.testbeds.linear_ce:setup", variant="naive", n=512, vocab=16384, dim=8
    )
    logits_bytes = 512 * 16384 * 4
    assert result["peak_extra_bytes"] >= logits_bytes  # the logits alone
    small = measure_in_fresh_process(
        "regkit.workbook.testbeds.linear_ce:setup", variant="regkit", n=512, vocab=16384, dim=8
    )
    assert small["peak_extra_bytes"] < result["peak_extra_bytes"] / 2


def test_fresh_process_measurement_reports_failures():
    assert "error" in measure_in_fresh_process(
        "regkit.workbook.testbeds.linear_ce:setup", variant="nope", n=2, vocab=2, dim=2
    )
