"""The real `tfgen` command line in a fresh process, for tests that need one.

Usage: python tfgen_main.py COMMAND [options] [--then COMMAND [options] ...]: the
commands run in turn in this one process (one start-up for several runs), stopping at the
first that fails. tests/ is put on `sys.path`, so configs can name `toy_models:...`
classes. TF_CONFIG (multi-worker tests) is read by tfgen itself. TensorFlow's native log
lines are dropped from stderr as the `tfgen` command drops them, so a test reads what a
user would see. TFGEN_TEST_LOGICAL_CPUS=N splits the CPU into N logical devices first,
so a mirrored strategy has N replicas on one CPU (the runtime takes this only before it
starts, hence a process of its own).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfgen import cli  # noqa: E402

THEN = "--then"


def run_commands(argv):
    """The exit code of the first command in `argv` (split at `--then`) that fails, else 0."""
    commands, current = [], []
    for arg in argv:
        if arg == THEN:
            commands.append(current)
            current = []
        else:
            current.append(arg)
    for command in [*commands, current]:
        code = cli.main(command)
        if code:
            return code
    return 0


if __name__ == "__main__":
    logical_cpus = int(os.environ.get("TFGEN_TEST_LOGICAL_CPUS", "0"))
    if logical_cpus:
        from tfgen.backend import tf

        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    cli.filter_native_stderr()
    sys.exit(run_commands(sys.argv[1:]))
