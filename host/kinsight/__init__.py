"""Kinsight's host library, in layers from the wire up to the command line.

=================  ==================================================================
package            what it is for
=================  ==================================================================
``errors``         the root error class and its subclasses (every layer's refusals)
``wire``           the wire protocol: frames, reassembly, capture files, SLIP, vectors
``store``          the database: node keys, the frame archive, decoded records
``ingest``         the one ingest path, and the transports that feed it (UDP, serial)
``residents``      whose events are whose, Activities, histories from other systems
``learning``       daily features, the personal model, the baseline, real-time rules
``alerts``         policy, stored alerts, routing, delivery to the care circle
``reports``        static HTML reports for a care team
``service``        what runs the layers together: the morning analysis, the watcher
``simulation``     simulated residents with their ground truth; firmware under MicroPython
``evaluation``     scoring detectors on suites and on real homes
``bench``          benchmarks on the real code paths
``demo``           ``kinsight demo``, the main job, end to end
``cli``            the ``kinsight`` command
=================  ==================================================================

A package imports only the packages below it; each package's docstring says which
(``May import:``), and a test holds every module to it. ``docs/architecture.md``
follows a frame from the sensor to an alert through these packages.
"""

__version__ = "0.1.0"
