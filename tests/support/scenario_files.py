"""Small scenario files shared by the CLI tests (kept tiny so the optimizer compiles fast)."""


def tiny_chain_toml(segments: int, starts: int, steps: int, t_trunc: int) -> str:
    """A 60 km double-click chain with 100 ms memories, searched over ``segments`` only."""
    return f'''name = "tiny chain"
distance_km = 60.0
attenuation_db_per_km = 0.2
[heralding]
scheme = "double_click"
efficiency = 0.5
visibility = 0.97
prep_time_s = 5e-6
[memory]
t_coh = "100 ms"
[repeater]
swap_success = 1.0
gate_depolarizing = 0.01
measurement_error = 0.005
[search]
segments = [{segments}]
starts = {starts}
steps = {steps}
t_trunc = {t_trunc}
'''
