#!/bin/bash
# system packages would be installed here (apt-get); this one only leaves a trace in the build
echo "deps/setup.sh ran"
