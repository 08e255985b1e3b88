#!/usr/bin/env bash
# Start a real single-node OpenSearch (the server itself, in one JVM, with the
# analysis-kuromoji plugin) from Maven Central artifacts; the test suite starts the
# same node. Needs Maven and a JDK >= 21; downloads (~90 MB) are cached in ~/.m2.
#
#   search/opensearch/run-node.sh [DATA_DIR]
#
# Environment: OPENSEARCH_PORT_BASE (the node takes the first free HTTP port above it,
# up to 9299; default 9200), OPENSEARCH_HEAP (default 512m), JAVA (a java >= 21).
# Prints "HTTP Port: N" once listening; then point the archive at it:
#   ARCHIVE_SEARCH_BACKEND=opensearch ARCHIVE_SEARCH_URL=http://127.0.0.1:N archive reindex
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
data="${1:-$(mktemp -d -t archive-opensearch.XXXXXX)}"
port_base="${OPENSEARCH_PORT_BASE:-9200}"
heap="${OPENSEARCH_HEAP:-512m}"

java_major() { "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }

java="${JAVA:-}"
if [[ -z "$java" ]]; then
  for candidate in "${JAVA_HOME:-/nonexistent}/bin/java" /usr/lib/jvm/*/bin/java "$(command -v java || true)"; do
    if [[ -x "$candidate" ]] && (( $(java_major "$candidate") >= 21 )); then
      java="$candidate"
      break
    fi
  done
fi
if [[ -z "$java" ]]; then
  echo "run-node.sh: OpenSearch 3 needs Java 21 or newer; set JAVA=/path/to/java" >&2
  exit 2
fi

# Resolve the classpath once per pom.xml version. Nodes starting at once (a test worker
# each) resolve it side by side, each into a file of its own, renamed into place.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/city-digital-museum"
mkdir -p "$cache"
classpath_file="$cache/opensearch-classpath-$(sha1sum "$here/pom.xml" | cut -c1-12).txt"
if [[ ! -s "$classpath_file" ]]; then
  mvn -q -B -f "$here/pom.xml" dependency:build-classpath \
      -Dmdep.outputFile="$classpath_file.$$.tmp" >&2
  mv -f "$classpath_file.$$.tmp" "$classpath_file"
fi

exec "$java" -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC -Dlog4j2.disable.jmx=true \
  -cp "$(cat "$classpath_file")" org.codelibs.opensearch.runner.OpenSearchRunner \
  -basePath "$data" -numOfNode 1 -baseHttpPort "$port_base" -clusterName archive-test \
  -pluginTypes org.opensearch.plugin.analysis.kuromoji.AnalysisKuromojiPlugin
