#!/bin/bash
# Runs one standalone ZooKeeper server on port 2181, its data in /data.
set -euo pipefail
exec java -Xmx256m -cp '/usr/share/java/*' \
    -Dzookeeper.admin.enableServer=false \
    org.apache.zookeeper.server.ZooKeeperServerMain 2181 /data
