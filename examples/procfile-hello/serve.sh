#!/bin/sh
# Serves public/ on $PORT with busybox httpd (in the foreground).
exec busybox httpd -f -v -p "${PORT:-8080}" -h public
