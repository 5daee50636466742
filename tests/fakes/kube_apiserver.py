#!/usr/bin/env python3
"""A fake kube-apiserver for cpscale's integration tests (standard library only).

It speaks the real API server's wire format over HTTPS on 127.0.0.1:
discovery (legacy and aggregated), a minimal OpenAPI v3 document, an
in-memory object store with one global resourceVersion, get / list / watch /
create / update / patch / delete, the Deployment scale and status
subresources, `Status` error bodies, authentication by bearer token or
TLS client certificate, impersonation, and (--authorization-mode RBAC) the
RBAC authorizer with self access reviews (`kubectl auth can-i`, in JSON or
in the protobuf kubectl sends; other kinds are JSON only: a protobuf body
for one of them is answered 415, which a real server does only for custom
resources). A plain-HTTP control port, also on 127.0.0.1, seeds
objects, injects faults, compacts the watch history and returns the request
log.

Usage:
  kube_apiserver.py --cert F --key F --client-ca F --tokens F
                    --port-file F --control-port-file F --log F
                    [--manual-status] [--status-after-scale] [--legacy-discovery]
                    [--history-limit N] [--watch-timeout S] [--bookmark-interval S]
                    [--bookmarks real|none]
                    [--authorization-mode AlwaysAllow|RBAC]
                    [--exit-with-parent]

Exits 0 on SIGTERM or SIGINT, 2 on a usage error.
"""

import argparse
import base64
import collections
import datetime
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import k8s_protobuf  # tests/fakes/k8s_protobuf.py: the protobuf wire format the reviews take
import rbac_rules  # tests/fakes/rbac_rules.py: the RBAC authorizer's matching

SERVER_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3", "compiler": "gc",
    "platform": "linux/amd64",
}

LOOPBACK = "127.0.0.1"
STATUS_AFTER_SCALE_S = 0.05         # --status-after-scale: the deployment controller's delay
HISTORY_LIMIT = 10000              # watch events kept; older resourceVersions answer 410
DEFAULT_WATCH_TIMEOUT_S = 1800     # a watch without timeoutSeconds ends after this
BOOKMARK_INTERVAL_S = 5.0          # how often a watch with allowWatchBookmarks gets one
# real: bookmarks shaped as a real server sends them (no name, zeroed spec
# and status); none: no periodic bookmark at all, as a v1.24 server on a
# watch where nothing changed
BOOKMARK_MODES = ("real", "none")
MAX_BODY_BYTES = 3 * 1024 * 1024   # the real server's request size limit
IDLE_CONNECTION_TIMEOUT_S = 120    # a kept-alive connection idle this long is closed
TLS_HANDSHAKE_TIMEOUT_S = 10       # bound on one TLS handshake
REQUEST_LOG_MEMORY_LIMIT = 200000  # in-memory log records kept (the file keeps all)
MAX_FAULT_DELAY_S = 300.0          # bound on an injected delay
POLL_INTERVAL_S = 0.2              # serve_forever's shutdown poll
WATCH_DRAIN_S = 1.0                # at shutdown, how long open watches get to end cleanly
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1
EVENT_FIELD_LIMIT = 128            # reportingInstance, action, reason
EVENT_NOTE_LIMIT = 1024            # note (message) of an events.k8s.io/v1 Event
GENERATE_NAME_SUFFIX_LEN = 5
GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
STATUS_JSON = "application/json"
AGGREGATED_DISCOVERY_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
MICROTIME_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
TIME_LAYOUT = "2006-01-02T15:04:05Z07:00"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


# ------------------------------------------------------------------ resources

STANDARD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = ["get", "patch", "update"]


class ResourceType:
    """One served resource: its place in the URL space, its kind, its scope,
    what discovery says about it, and where its objects are stored. Two API
    resources may share one store (core and events.k8s.io Events do)."""

    def __init__(self, group, version, resource, kind, namespaced, short_names=(),
                 categories=(), subresources=None, verbs=None, storage=None,
                 tracks_generation=False, review=False):
        self.group = group
        self.version = version
        self.resource = resource
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.categories = list(categories)
        # subresource name -> (group, version, kind) of its body; None = the object's own kind
        self.subresources = dict(subresources or {})
        self.verbs = list(verbs or STANDARD_VERBS)
        self.storage = storage or (group, resource)
        self.tracks_generation = tracks_generation
        # an access review: created (evaluated and answered), never stored
        self.review = review
        self.group_version = "%s/%s" % (group, version) if group else version
        self.list_kind = kind + "List"
        self.singular = kind.lower()

    def qualified(self):
        """`deployments.apps`, or `configmaps` for the core group (as error messages say)."""
        return "%s.%s" % (self.resource, self.group) if self.group else self.resource

    def has_status(self):
        return "status" in self.subresources


CORE_EVENTS = ("", "events")
RESOURCE_TYPES = [
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    ResourceType("", "v1", "events", "Event", True, ["ev"]),
    ResourceType("", "v1", "namespaces", "Namespace", False, ["ns"], subresources={"status": None},
                 verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
    ResourceType("", "v1", "pods", "Pod", True, ["po"], ["all"], subresources={"status": None}),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    ResourceType("", "v1", "services", "Service", True, ["svc"], ["all"], subresources={"status": None}),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ["deploy"], ["all"],
                 subresources={"scale": ("autoscaling", "v1", "Scale"), "status": None},
                 tracks_generation=True),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, ["ev"], storage=CORE_EVENTS),
    ResourceType("batch", "v1", "jobs", "Job", True, [], ["all"], subresources={"status": None},
                 tracks_generation=True),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"],
                 subresources={"status": None}, tracks_generation=True),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"],
                 tracks_generation=True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
                 False, verbs=["create"], review=True),
    ResourceType("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview",
                 False, verbs=["create"], review=True),
    ResourceType("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", True, ["smon"],
                 ["prometheus-operator"], tracks_generation=True),
    ResourceType("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", True,
                 ["promrule"], ["prometheus-operator"], tracks_generation=True),
]
# Named groups in the order /apis lists them (the real server orders by priority).
API_GROUPS = ["apps", "events.k8s.io", "authorization.k8s.io", "batch", "networking.k8s.io",
              "policy", "rbac.authorization.k8s.io", "coordination.k8s.io", "monitoring.coreos.com"]
TYPE_BY_PATH = {(t.group, t.version, t.resource): t for t in RESOURCE_TYPES}
TYPE_BY_KIND = {(t.group_version, t.kind): t for t in RESOURCE_TYPES}
RBAC_TYPES = [t for t in RESOURCE_TYPES if t.group == "rbac.authorization.k8s.io"]
TYPE_BY_STORAGE = {t.storage: t for t in RESOURCE_TYPES if t.storage == (t.group, t.resource)}
NAMESPACES = TYPE_BY_PATH[("", "v1", "namespaces")]
DEPLOYMENTS = TYPE_BY_PATH[("apps", "v1", "deployments")]
BOOTSTRAP_NAMESPACES = ["default", "kube-node-lease", "kube-public", "kube-system"]


def group_versions():
    """Every served group/version, core first, then the named groups in /apis order."""
    seen = []
    for group in [""] + API_GROUPS:
        for t in RESOURCE_TYPES:
            if t.group == group and (t.group, t.version) not in seen:
                seen.append((t.group, t.version))
    return seen


# ------------------------------------------------------------------ errors

REASON_BY_CODE = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Gone",
    413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a meta.k8s.io/v1 Status body with `code` as the
    HTTP status; `headers` are extra response headers (Retry-After)."""

    def __init__(self, code, message, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASON_BY_CODE.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self):
        return failure_status(self.code, self.reason, self.message, self.details)


def failure_status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def error_details(rtype, name, kind=None, **extra):
    """The `details` of a Status about one object: name, group (omitted for
    core, like the real server), kind (the resource name unless given)."""
    details = {"name": name} if name else {}   # omitted when empty, as Go's omitempty
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = kind or rtype.resource
    details.update(extra)
    return details


def not_found(rtype, name):
    return ApiError(404, '%s "%s" not found' % (rtype.qualified(), name),
                    details=error_details(rtype, name))


def unknown_path():
    return ApiError(404, "the server could not find the requested resource", details={})


def method_not_allowed():
    return ApiError(405, "the server does not allow this method on the requested resource",
                    details={})


def conflict(rtype, name):
    return ApiError(409, 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                    "please apply your changes to the latest version and try again"
                    % (rtype.qualified(), name), details=error_details(rtype, name))


def bad_request(message):
    return ApiError(400, message)


def expired(message):
    return ApiError(410, message, reason="Expired")


class FieldError:
    """One field validation failure, rendered the way the real server does."""

    def __init__(self, kind, field, value=None, detail=""):
        self.kind = kind      # Required, Invalid, NotSupported
        self.field = field
        self.value = value
        self.detail = detail

    def text(self):
        if self.kind == "Required":
            return "%s: Required value%s" % (self.field, ": " + self.detail if self.detail else "")
        if self.kind == "NotSupported":
            return "%s: Unsupported value: %s: %s" % (self.field, go_quote(self.value), self.detail)
        return "%s: Invalid value: %s: %s" % (self.field, go_quote(self.value), self.detail)

    def cause(self):
        return {"reason": "FieldValue" + self.kind, "message": self.text()[len(self.field) + 2:],
                "field": self.field}


def go_quote(value):
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)


def invalid(kind_label, group, name, errors):
    """422 Invalid for a list of FieldErrors, message and causes as the real server."""
    texts = [e.text() for e in errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qualified = "%s.%s" % (kind_label, group) if group else kind_label
    details = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind_label
    details["causes"] = [e.cause() for e in errors]
    return ApiError(422, '%s "%s" is invalid: %s' % (qualified, name, joined), details=details)


# ------------------------------------------------------------------ time

TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
MICROTIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{6})(Z|[+-]\d{2}:\d{2})$")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_microtime(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# parse_time: a datetime from an RFC 3339 string, or None when it does not
# parse. `micro` demands metav1.MicroTime's layout (exactly six fractional
# digits), which Go's decoder enforces: a controller writing a Lease's
# renewTime with another precision is rejected by the real server too.
def parse_time(text, micro=False):
    match = (MICROTIME_RE if micro else TIME_RE).match(text) if isinstance(text, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    zone = match.group(8)
    try:
        offset = datetime.timedelta(0)
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            offset = sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
        return datetime.datetime(year, month, day, hour, minute, second, micros,
                                 tzinfo=datetime.timezone(offset))
    except ValueError:
        return None


# human_duration: an age the way kubectl's tables print it ("45s", "3m2s",
# "5h", "12d"); the real server fills Table cells with these strings.
def human_duration(seconds):
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return "%ds" % seconds
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return "%dm%ds" % (minutes, rest) if rest else "%dm" % minutes
    if minutes < 180:
        return "%dm" % minutes
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return "%dh%dm" % (hours, rest) if rest else "%dh" % hours
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        rest = hours % 24
        return "%dd%dh" % (hours // 24, rest) if rest else "%dd" % (hours // 24)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return "%dy%dd" % (hours // 24 // 365, rest) if rest else "%dy" % (hours // 24 // 365)
    return "%dy" % (hours // 24 // 365)


def age_of(timestamp):
    moment = parse_time(timestamp) if timestamp else None
    if moment is None:
        return "<unknown>"
    return human_duration((utc_now() - moment).total_seconds())


# ------------------------------------------------------------------ field types

# The JSON types of the fields the fake checks, per "groupVersion/Kind", as
# Go's decoder would enforce them: a wrong type is a 400 BadRequest, exactly
# where the real server fails to decode the body. Times are normalized the
# way the real server re-encodes them (UTC; seconds, or microseconds).
COMMON_FIELDS = {
    "metadata": "object", "metadata.name": "string", "metadata.generateName": "string",
    "metadata.namespace": "string", "metadata.uid": "string", "metadata.resourceVersion": "string",
    "metadata.generation": "int64", "metadata.creationTimestamp": "time",
    "metadata.labels": "map", "metadata.annotations": "map", "metadata.finalizers": "strings",
    "metadata.ownerReferences": "array",
}
FIELD_TYPES = {
    "apps/v1/Deployment": {
        "spec": "object", "spec.replicas": "int32", "spec.selector": "object",
        "spec.selector.matchLabels": "map", "spec.selector.matchExpressions": "array",
        "spec.template": "object", "spec.template.metadata": "object",
        "spec.template.metadata.labels": "map", "spec.template.spec": "object",
        "spec.template.spec.containers": "array", "spec.minReadySeconds": "int32",
        "spec.revisionHistoryLimit": "int32", "spec.progressDeadlineSeconds": "int32",
        "spec.paused": "bool", "spec.strategy": "object", "status": "object",
        "status.observedGeneration": "int64", "status.replicas": "int32",
        "status.updatedReplicas": "int32", "status.readyReplicas": "int32",
        "status.availableReplicas": "int32", "status.unavailableReplicas": "int32",
        "status.terminatingReplicas": "int32", "status.collisionCount": "int32",
        "status.conditions": "array",
    },
    "autoscaling/v1/Scale": {
        "spec": "object", "spec.replicas": "int32", "status": "object",
        "status.replicas": "int32", "status.selector": "string",
    },
    "coordination.k8s.io/v1/Lease": {
        "spec": "object", "spec.holderIdentity": "string", "spec.leaseDurationSeconds": "int32",
        "spec.acquireTime": "microtime", "spec.renewTime": "microtime",
        "spec.leaseTransitions": "int32", "spec.strategy": "string", "spec.preferredHolder": "string",
    },
    "v1/Event": {
        "involvedObject": "object", "reason": "string", "message": "string", "source": "object",
        "firstTimestamp": "time", "lastTimestamp": "time", "count": "int32", "type": "string",
        "eventTime": "microtime", "series": "object", "series.count": "int32",
        "series.lastObservedTime": "microtime", "action": "string", "related": "object",
        "reportingComponent": "string", "reportingInstance": "string",
    },
    "events.k8s.io/v1/Event": {
        "eventTime": "microtime", "series": "object", "series.count": "int32",
        "series.lastObservedTime": "microtime", "reportingController": "string",
        "reportingInstance": "string", "action": "string", "reason": "string",
        "regarding": "object", "related": "object", "note": "string", "type": "string",
        "deprecatedSource": "object", "deprecatedFirstTimestamp": "time",
        "deprecatedLastTimestamp": "time", "deprecatedCount": "int32",
    },
    "v1/ConfigMap": {"data": "map", "binaryData": "map", "immutable": "bool"},
    "v1/Secret": {"data": "map", "stringData": "map", "type": "string", "immutable": "bool"},
    "v1/Namespace": {"spec": "object", "status": "object"},
}
GO_TYPE_NAMES = {"int32": "int32", "int64": "int64", "string": "string", "bool": "bool",
                 "object": "struct", "array": "slice", "map": "map[string]string",
                 "strings": "[]string", "time": "v1.Time", "microtime": "v1.MicroTime"}


def json_type_name(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number " + json.dumps(value)
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


# check_value: the value of one field, normalized, or an error text when it
# would not decode into the Go type `type_code` names.
def check_value(type_code, value):
    if type_code in ("int32", "int64"):
        low, high = (INT32_MIN, INT32_MAX) if type_code == "int32" else (INT64_MIN, INT64_MAX)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return None, "cannot unmarshal %s" % json_type_name(value)
        return value, None
    if type_code == "string":
        return (value, None) if isinstance(value, str) else (None, "cannot unmarshal %s" % json_type_name(value))
    if type_code == "bool":
        return (value, None) if isinstance(value, bool) else (None, "cannot unmarshal %s" % json_type_name(value))
    if type_code == "object":
        return (value, None) if isinstance(value, dict) else (None, "cannot unmarshal %s" % json_type_name(value))
    if type_code == "array":
        return (value, None) if isinstance(value, list) else (None, "cannot unmarshal %s" % json_type_name(value))
    if type_code == "map":
        if not isinstance(value, dict):
            return None, "cannot unmarshal %s" % json_type_name(value)
        for item in value.values():
            if not isinstance(item, str):
                return None, "cannot unmarshal %s" % json_type_name(item)
        return value, None
    if type_code == "strings":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, "cannot unmarshal %s" % json_type_name(value)
        return value, None
    if type_code in ("time", "microtime"):
        micro = type_code == "microtime"
        moment = parse_time(value, micro=micro) if isinstance(value, str) else None
        if moment is None:
            if not isinstance(value, str):
                return None, "cannot unmarshal %s" % json_type_name(value)
            return None, 'parsing time %s as "%s": cannot parse' % (
                json.dumps(value), MICROTIME_LAYOUT if micro else TIME_LAYOUT)
        return (format_microtime(moment) if micro else format_time(moment)), None
    return value, None


# check_field_types: a copy of `obj` with checked fields normalized, or a
# 400 BadRequest naming the first field that would not decode, worded like
# the real server's decoding error.
def check_field_types(group_version, kind, obj):
    types = dict(COMMON_FIELDS)
    types.update(FIELD_TYPES.get("%s/%s" % (group_version, kind), {}))
    obj = json.loads(json.dumps(obj))
    for path in sorted(types, key=lambda p: p.count(".")):
        parts = path.split(".")
        parent = obj
        for part in parts[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or parent.get(parts[-1]) is None:
            continue
        value, problem = check_value(types[path], parent[parts[-1]])
        if problem:
            version = group_version.split("/")[-1]
            if types[path] in ("time", "microtime") and problem.startswith("parsing"):
                raise bad_request('%s in version "%s" cannot be handled as a %s: %s'
                                  % (kind, version, kind, problem))
            raise bad_request('%s in version "%s" cannot be handled as a %s: json: %s into Go struct '
                              'field %s.%s of type %s' % (kind, version, kind, problem, kind, path,
                                                          GO_TYPE_NAMES[types[path]]))
        parent[parts[-1]] = value
    return obj


# ------------------------------------------------------------------ names

DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_SUBDOMAIN_MESSAGE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric "
                         "character (e.g. 'example.com', regex used for validation is "
                         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS_LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                     "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',"
                     "  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


# name_problem: why `name` is not a valid name for objects of `rtype`, or
# None. Namespaces are DNS labels, RBAC objects path segments, the rest DNS
# subdomains -- the rules the real server applies.
def name_problem(rtype, name):
    if rtype is NAMESPACES:
        if len(name) > 63 or not DNS_LABEL_RE.match(name):
            return DNS_LABEL_MESSAGE
        return None
    if rtype.group == "rbac.authorization.k8s.io":
        if name in (".", "..") or "/" in name or "%" in name:
            return "may not contain '/' or '%' and may not be '.' or '..'"
        return None
    if len(name) > 253 or not DNS_SUBDOMAIN_RE.match(name):
        return DNS_SUBDOMAIN_MESSAGE
    return None


def qualified_name_problem(value):
    """Why `value` is not a Kubernetes qualified name ([prefix/]name), or None."""
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN_RE.match(prefix)):
        return "prefix part " + DNS_SUBDOMAIN_MESSAGE
    if not name or len(name) > 63 or not QUALIFIED_NAME_RE.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                "and end with an alphanumeric character")
    return None


# ------------------------------------------------------------------ selectors

def split_selector_terms(text):
    """Split a selector on the commas that are not inside parentheses."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


SET_TERM_RE = re.compile(r"^([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)$")
EQUALITY_TERM_RE = re.compile(r"^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$")
KEY_TERM_RE = re.compile(r"^(!?)\s*([^\s!=(),]+)$")


# parse_label_selector: a list of (key, operator, values) requirements for
# the labelSelector syntax (=, ==, !=, in, notin, exists, !exists); 400
# BadRequest on a term it cannot read, as the real server.
def parse_label_selector(text):
    requirements = []
    for term in split_selector_terms(text or ""):
        match = SET_TERM_RE.match(term)
        if match:
            values = {v.strip() for v in match.group(3).split(",") if v.strip()}
            requirements.append((match.group(1), match.group(2), values))
            continue
        match = EQUALITY_TERM_RE.match(term)
        if match:
            operator = "!=" if match.group(2) == "!=" else "="
            requirements.append((match.group(1), operator, {match.group(3)}))
            continue
        match = KEY_TERM_RE.match(term)
        if match:
            requirements.append((match.group(2), "!exists" if match.group(1) else "exists", set()))
            continue
        raise bad_request("unable to parse requirement: found '%s', expected: identifier" % term)
    return requirements


def labels_match(requirements, labels):
    labels = labels or {}
    for key, operator, values in requirements:
        present = key in labels
        if operator == "=" and labels.get(key) not in values:
            return False
        if operator == "!=" and present and labels[key] in values:
            return False
        if operator == "in" and (not present or labels[key] not in values):
            return False
        if operator == "notin" and present and labels[key] in values:
            return False
        if operator == "exists" and not present:
            return False
        if operator == "!exists" and present:
            return False
    return True


def parse_field_selector(text):
    """(dotted path, operator, value) terms of a fieldSelector (=, ==, !=)."""
    requirements = []
    for term in split_selector_terms(text or ""):
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|=|!=)\s*(.*)$", term)
        if not match:
            raise bad_request('invalid selector: \'%s\'; can\'t understand \'%s\'' % (text, term))
        requirements.append((match.group(1), "!=" if match.group(2) == "!=" else "=", match.group(3)))
    return requirements


def field_value(obj, path):
    value = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def fields_match(requirements, obj):
    for path, operator, expected in requirements:
        actual = field_value(obj, path)
        if (actual == expected) != (operator == "="):
            return False
    return True


def selector_string(selector):
    """A LabelSelector as the canonical string Scale.status.selector carries."""
    if not isinstance(selector, dict):
        return ""
    terms = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        terms.append((key, "%s=%s" % (key, value)))
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = sorted(expression.get("values") or [])
        if operator == "In":
            terms.append((key, "%s in (%s)" % (key, ",".join(values))))
        elif operator == "NotIn":
            terms.append((key, "%s notin (%s)" % (key, ",".join(values))))
        elif operator == "Exists":
            terms.append((key, key))
        elif operator == "DoesNotExist":
            terms.append((key, "!" + key))
    return ",".join(text for _, text in sorted(terms))


def selector_matches_labels(selector, labels):
    requirements = parse_label_selector(selector_string(selector))
    return bool(requirements) and labels_match(requirements, labels)


# ------------------------------------------------------------------ patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: objects merge, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# The merge keys of the lists strategic merge patch merges instead of
# replacing (from the Kubernetes types' patchMergeKey tags). `ports` merges
# on containerPort in containers and on port in Services.
STRATEGIC_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "conditions": "type", "ownerReferences": "uid",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
}
STRATEGIC_PRIMITIVE_MERGE = {"finalizers"}
STRATEGIC_DELETE = object()


def strip_directives(value):
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_directives(v) for v in value]
    return value


def strategic_list_key(field, items):
    if field == "ports":
        return "containerPort" if any("containerPort" in i for i in items if isinstance(i, dict)) else "port"
    return STRATEGIC_MERGE_KEYS.get(field)


# strategic_merge_patch: a strategic merge patch applied to `target`. It is
# a JSON merge patch, plus merging of the lists Kubernetes merges by key
# (containers by name, ...) and the $patch, $retainKeys,
# $deleteFromPrimitiveList and $setElementOrder directives kubectl sends.
# Element order directives are accepted and ignored.
def strategic_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return patch
    directive = patch.get("$patch")
    if directive == "delete":
        return STRATEGIC_DELETE
    if directive == "replace":
        return strip_directives(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is STRATEGIC_DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = strategic_merge_list(key, result.get(key), value)
        else:
            result[key] = value
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def strategic_merge_list(field, original, items):
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in items):
        return [strip_directives(i) for i in items
                if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    if field in STRATEGIC_PRIMITIVE_MERGE and isinstance(original, list):
        return list(original) + [i for i in items if i not in original]
    merge_key = strategic_list_key(field, items)
    if (merge_key is None or not isinstance(original, list)
            or not all(isinstance(i, dict) for i in items + original)):
        return [strip_directives(i) for i in items
                if not (isinstance(i, dict) and i.get("$patch") == "delete")]
    result = list(original)
    for item in items:
        position = next((n for n, old in enumerate(result)
                         if old.get(merge_key) == item.get(merge_key)), None)
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(strip_directives(item))
        else:
            result[position] = strategic_merge_patch(result[position], item)
    return result


def json_pointer(path):
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise ApiError(422, "invalid JSON pointer: %r" % (path,))
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def pointer_parent(doc, tokens, path):
    parent = doc
    for token in tokens[:-1]:
        if isinstance(parent, dict) and token in parent:
            parent = parent[token]
        elif isinstance(parent, list) and token.isdigit() and int(token) < len(parent):
            parent = parent[int(token)]
        else:
            raise ApiError(422, "doc is missing path: %s" % path)
    return parent


def pointer_get(doc, path):
    tokens = json_pointer(path)
    if not tokens:
        return doc
    parent = pointer_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise ApiError(422, "doc is missing path: %s" % path)


def pointer_remove(doc, path):
    tokens = json_pointer(path)
    parent = pointer_parent(doc, tokens, path)
    last = tokens[-1] if tokens else None
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last is not None and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise ApiError(422, "Unable to remove nonexistent key: %s: missing value" % path)


def pointer_add(doc, path, value, replace=False):
    tokens = json_pointer(path)
    if not tokens:
        return value
    parent = pointer_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise ApiError(422, "replace operation does not apply: doc is missing key: %s" % path)
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise ApiError(422, "Unable to access invalid index: %s" % last)
    else:
        raise ApiError(422, "doc is missing path: %s" % path)
    return doc


# json_patch: an RFC 6902 patch (add, remove, replace, move, copy, test)
# applied to a copy of `doc`. A malformed patch is 400; an operation that
# cannot apply (a failed test, a missing path) is 422, as the real server.
def json_patch(doc, operations):
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = json.loads(json.dumps(doc))
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise bad_request("invalid JSON patch operation: %s" % json.dumps(operation))
        op, path = operation.get("op"), operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise bad_request("missing value in %s operation" % op)
        if op == "add":
            doc = pointer_add(doc, path, json.loads(json.dumps(operation["value"])))
        elif op == "replace":
            doc = pointer_add(doc, path, json.loads(json.dumps(operation["value"])), replace=True)
        elif op == "remove":
            pointer_remove(doc, path)
        elif op == "test":
            if pointer_get(doc, path) != operation["value"]:
                raise ApiError(422, "testing value %s failed: test failed" % path)
        elif op in ("move", "copy"):
            source = operation.get("from")
            value = pointer_get(doc, source)
            if op == "move":
                pointer_remove(doc, source)
            doc = pointer_add(doc, path, json.loads(json.dumps(value)))
        else:
            raise bad_request("Unexpected kind: %s" % op)
    return doc


# apply_patch: `patch_body` (bytes) of media type `content_type` applied to
# the API form of an object. 415 for a patch type the fake does not speak
# (server-side apply included), 400 for a body that is not JSON.
def apply_patch(content_type, current, patch_body):
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH):
        raise ApiError(415, "the body of the request was in an unknown format - accepted media types "
                       "include: application/json-patch+json, application/merge-patch+json, "
                       "application/strategic-merge-patch+json")
    try:
        patch = json.loads(patch_body or b"null")
    except ValueError as exc:
        raise bad_request("error decoding patch: %s" % exc)
    if media == JSON_PATCH:
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}"
                          % json_type_name(patch))
    if media == MERGE_PATCH:
        return merge_patch(json.loads(json.dumps(current)), patch)
    merged = strategic_merge_patch(json.loads(json.dumps(current)), patch)
    return {} if merged is STRATEGIC_DELETE else merged


# ------------------------------------------------------------------ object shapes

METADATA_ORDER = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                  "generation", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                  "finalizers", "managedFields"]


def canonical(obj):
    """The object with kind, apiVersion, metadata first and metadata's keys in
    the real server's order (the JSON the fake writes reads like the real)."""
    out = {}
    for key in ("kind", "apiVersion", "metadata"):
        if key in obj:
            out[key] = obj[key]
    for key, value in obj.items():
        if key not in out:
            out[key] = value
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        ordered = {k: metadata[k] for k in METADATA_ORDER if k in metadata}
        ordered.update({k: v for k, v in metadata.items() if k not in ordered})
        out["metadata"] = ordered
    return out


CORE_EVENT_ORDER = ["involvedObject", "reason", "message", "source", "firstTimestamp",
                    "lastTimestamp", "count", "type", "eventTime", "series", "action", "related",
                    "reportingComponent", "reportingInstance"]
# core v1 field -> events.k8s.io/v1 field (the real server's conversion)
EVENT_FIELD_MAP = [
    ("eventTime", "eventTime"), ("series", "series"), ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"), ("action", "action"), ("reason", "reason"),
    ("involvedObject", "regarding"), ("related", "related"), ("message", "note"), ("type", "type"),
    ("source", "deprecatedSource"), ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"), ("count", "deprecatedCount"),
]


def core_event_shape(event):
    """A core v1 Event with the fields Go always writes (empty struct, null
    times, empty strings) filled in, in the real field order."""
    defaults = {"involvedObject": {}, "source": {}, "firstTimestamp": None, "lastTimestamp": None,
                "eventTime": None, "reportingComponent": "", "reportingInstance": ""}
    out = {"kind": "Event", "apiVersion": "v1", "metadata": event.get("metadata", {})}
    for key in CORE_EVENT_ORDER:
        value = event.get(key)
        if key in defaults:
            out[key] = defaults[key] if value is None else value
        elif value not in (None, ""):
            out[key] = value
    for key, value in event.items():
        if key not in out and key not in ("kind", "apiVersion"):
            out[key] = value
    for key in ("reason", "message", "type", "action"):
        if out.get(key) == "":
            del out[key]
    if out.get("count") == 0:
        del out["count"]
    return out


def events_v1_from_core(event):
    out = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": event.get("metadata", {}),
           "eventTime": event.get("eventTime")}
    for core_key, v1_key in EVENT_FIELD_MAP:
        value = event.get(core_key)
        if v1_key == "eventTime" or value in (None, "", 0, {}):
            continue
        out[v1_key] = value
    return out


def core_from_events_v1(event):
    core = {"metadata": event.get("metadata", {})}
    for core_key, v1_key in EVENT_FIELD_MAP:
        if v1_key in event:
            core[core_key] = event[v1_key]
    return core_event_shape(core)


def to_api(rtype, stored):
    """The stored object as `rtype`'s API version shows it."""
    if rtype.group == "events.k8s.io":
        return events_v1_from_core(stored)
    return stored


def to_storage(rtype, obj):
    if rtype.storage == CORE_EVENTS:
        return core_from_events_v1(obj) if rtype.group == "events.k8s.io" else core_event_shape(obj)
    return obj


def partial_metadata(obj):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def list_item(obj):
    """A list item as the real server writes it: no kind or apiVersion."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


# ------------------------------------------------------------------ defaults and validation

def default_deployment(obj):
    """Fill in the defaults the real server gives an apps/v1 Deployment on every write."""
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    template = spec.get("template")
    pod_spec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(pod_spec, dict):
        pod_spec.setdefault("restartPolicy", "Always")
        pod_spec.setdefault("terminationGracePeriodSeconds", 30)
        pod_spec.setdefault("dnsPolicy", "ClusterFirst")
        pod_spec.setdefault("securityContext", {})
        pod_spec.setdefault("schedulerName", "default-scheduler")
        for container in pod_spec.get("containers") or []:
            if isinstance(container, dict):
                image = container.get("image") or ""
                latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
                container.setdefault("resources", {})
                container.setdefault("terminationMessagePath", "/dev/termination-log")
                container.setdefault("terminationMessagePolicy", "File")
                container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")


def validate_deployment(obj):
    spec = obj.get("spec") or {}
    errors = []
    if spec.get("replicas", 0) < 0:
        errors.append(FieldError("Invalid", "spec.replicas", spec["replicas"],
                                 "must be greater than or equal to 0"))
    selector = spec.get("selector")
    if not selector_string(selector):
        errors.append(FieldError("Required", "spec.selector"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector_string(selector) and not selector_matches_labels(selector, labels):
        errors.append(FieldError("Invalid", "spec.template.metadata.labels", labels,
                                 "`selector` does not match template `labels`"))
    containers = (template.get("spec") or {}).get("containers")
    if not containers:
        errors.append(FieldError("Required", "spec.template.spec.containers"))
    else:
        for n, container in enumerate(containers):
            if not isinstance(container, dict) or not container.get("name"):
                errors.append(FieldError("Required", "spec.template.spec.containers[%d].name" % n))
            if not isinstance(container, dict) or not container.get("image"):
                errors.append(FieldError("Required", "spec.template.spec.containers[%d].image" % n))
    return errors


def validate_lease(obj):
    spec = obj.get("spec") or {}
    errors = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errors.append(FieldError("Invalid", "spec.leaseDurationSeconds", duration,
                                 "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errors.append(FieldError("Invalid", "spec.leaseTransitions", transitions,
                                 "must be greater than or equal to 0"))
    return errors


# validate_event: the real server's Event rules. Every Event passes the
# legacy rules (namespace agreement; with eventTime set, the reporting
# fields); one created through events.k8s.io/v1 must also have eventTime,
# type Normal or Warning, a valid series and no deprecated fields.
def validate_event(core, namespace, strict_v1):
    errors = []
    involved = core.get("involvedObject") or {}
    controller_field = "reportingController" if strict_v1 else "reportingComponent"
    involved_field = "regarding.namespace" if strict_v1 else "involvedObject.namespace"
    if not core.get("eventTime"):
        if not involved.get("namespace"):
            if namespace not in ("", "default"):
                errors.append(FieldError("Invalid", involved_field, "", "does not match event.namespace"))
        elif involved.get("namespace") != namespace:
            errors.append(FieldError("Invalid", involved_field, involved.get("namespace"),
                                     "does not match event.namespace"))
    else:
        if not involved.get("namespace") and namespace not in ("default", "kube-system"):
            errors.append(FieldError("Invalid", involved_field, "", "does not match event.namespace"))
        controller = core.get("reportingComponent") or ""
        if not controller:
            errors.append(FieldError("Required", controller_field))
        else:
            problem = qualified_name_problem(controller)
            if problem:
                errors.append(FieldError("Invalid", controller_field, controller, problem))
        for field, limit in (("reportingInstance", EVENT_FIELD_LIMIT), ("action", EVENT_FIELD_LIMIT),
                             ("reason", EVENT_FIELD_LIMIT)):
            value = core.get(field) or ""
            if not value:
                errors.append(FieldError("Required", field))
            elif len(value) > limit:
                errors.append(FieldError("Invalid", field, "", "can have at most %d characters" % limit))
        if len(core.get("message") or "") > EVENT_NOTE_LIMIT:
            errors.append(FieldError("Invalid", "note" if strict_v1 else "message", "",
                                     "can have at most %d characters" % EVENT_NOTE_LIMIT))
    if not strict_v1:
        return errors
    series = core.get("series")
    if isinstance(series, dict):
        if (series.get("count") or 0) < 2:
            errors.append(FieldError("Invalid", "series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errors.append(FieldError("Required", "series.lastObservedTime"))
    if not core.get("eventTime"):
        errors.append(FieldError("Required", "eventTime"))
    if core.get("type") not in ("Normal", "Warning"):
        errors.append(FieldError("Invalid", "type", "", "has invalid value: %s" % (core.get("type") or "")))
    for core_key, v1_key in (("firstTimestamp", "deprecatedFirstTimestamp"),
                             ("lastTimestamp", "deprecatedLastTimestamp"), ("count", "deprecatedCount")):
        if core.get(core_key):
            errors.append(FieldError("Invalid", v1_key, "", "needs to be unset"))
    source = core.get("source") or {}
    if source.get("component") or source.get("host"):
        errors.append(FieldError("Invalid", "deprecatedSource", "", "needs to be unset"))
    return errors


# ------------------------------------------------------------------ deployment status

def deployment_status_from_spec(deployment, old_status):
    """The status a settled Deployment has: every replica ready and
    available, observedGeneration current, zero counts omitted as Go does."""
    replicas = (deployment.get("spec") or {}).get("replicas", 1)
    status = {"observedGeneration": deployment["metadata"].get("generation", 1)}
    if replicas:
        status.update(replicas=replicas, updatedReplicas=replicas, readyReplicas=replicas,
                      availableReplicas=replicas)
    now = format_time(utc_now())
    old_conditions = {c.get("type"): c for c in (old_status or {}).get("conditions") or []
                      if isinstance(c, dict)}
    name = deployment["metadata"]["name"]
    template_hash = hashlib.sha256(json.dumps((deployment.get("spec") or {}).get("template"),
                                              sort_keys=True).encode()).hexdigest()[:10]
    conditions = []
    for kind, reason, message in (
            ("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
            ("Progressing", "NewReplicaSetAvailable",
             'ReplicaSet "%s-%s" has successfully progressed.' % (name, template_hash))):
        old = old_conditions.get(kind) or {}
        transition = old.get("lastTransitionTime") if old.get("status") == "True" else None
        conditions.append({"type": kind, "status": "True", "lastUpdateTime": now,
                           "lastTransitionTime": transition or now, "reason": reason,
                           "message": message})
    status["conditions"] = conditions
    return status


def omit_zero_status_counts(deployment):
    """Drop zero replica counts from a Deployment's status (omitempty in Go)."""
    status = deployment.get("status")
    if isinstance(status, dict):
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                    "unavailableReplicas"):
            if status.get(key) == 0:
                del status[key]


def scale_from_deployment(deployment):
    metadata = deployment["metadata"]
    scale_meta = {k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                           "creationTimestamp") if k in metadata}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": selector_string(spec.get("selector"))}}


# ------------------------------------------------------------------ the store

WatchRecord = collections.namedtuple("WatchRecord", "rv type storage namespace name obj old")


class Cluster:
    """The object store: every object of every resource, one global
    resourceVersion counter, and a bounded history of changes for watches.
    All access goes through `lock`; `changed` wakes watches. Stored objects
    are never mutated after they are stored, so history entries and readers
    can share them; every write builds a new object."""

    def __init__(self, manual_status=False, history_limit=HISTORY_LIMIT, status_after_scale=False):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.manual_status = manual_status
        self.status_after_scale = status_after_scale
        self.history_limit = history_limit
        self.objects = collections.defaultdict(dict)   # storage -> {(namespace, name): object}
        self.rv = 0
        self.history = collections.deque()
        self.floor_rv = 0      # watches may start from any resourceVersion >= this
        self.stopping = threading.Event()
        with self.lock:
            for name in BOOTSTRAP_NAMESPACES:
                self._store_new(NAMESPACES, "", self._new_namespace(name))

    def rbac_objects(self):
        """The stored Roles, ClusterRoles, RoleBindings and ClusterRoleBindings,
        each with its kind (what the RBAC authorizer evaluates)."""
        with self.lock:
            return [dict(obj, kind=rtype.kind) for rtype in RBAC_TYPES
                    for obj in self.objects[rtype.storage].values()]

    # -- low level (lock held) --

    def _new_namespace(self, name):
        return {"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": name, "uid": str(uuid.uuid4()),
                             "creationTimestamp": format_time(utc_now()),
                             "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def _commit(self, storage, namespace, name, new, old, event_type):
        """Store `new` (None deletes) at the next resourceVersion, record the
        change for watches, and wake them."""
        self.rv += 1
        bucket = self.objects[storage]
        if new is not None:
            new["metadata"]["resourceVersion"] = str(self.rv)
            bucket[(namespace, name)] = canonical(new)
            new = bucket[(namespace, name)]
        else:
            bucket.pop((namespace, name), None)
        self.history.append(WatchRecord(self.rv, event_type, storage, namespace, name, new, old))
        while len(self.history) > self.history_limit:
            self.floor_rv = self.history.popleft().rv
        self.changed.notify_all()
        return new

    def _store_new(self, rtype, namespace, obj):
        return self._commit(rtype.storage, namespace, obj["metadata"]["name"], obj, None, "ADDED")

    def _current(self, rtype, namespace, name):
        return self.objects[rtype.storage].get((namespace if rtype.namespaced else "", name))

    def _require(self, rtype, namespace, name):
        current = self._current(rtype, namespace, name)
        if current is None:
            raise not_found(rtype, name)
        return current

    def _namespace_exists(self, namespace):
        return ("", namespace) in self.objects[NAMESPACES.storage]

    def _snapshot(self, storage, at_rv, namespace):
        """{(namespace, name): object} of one store as it was at `at_rv`,
        rebuilt by undoing the history after it (the caller checked that the
        history reaches back that far)."""
        state = dict(self.objects[storage])
        if at_rv < self.rv:
            for record in reversed(self.history):
                if record.rv <= at_rv:
                    break
                if record.storage != storage:
                    continue
                key = (record.namespace, record.name)
                if record.old is None:
                    state.pop(key, None)
                else:
                    state[key] = record.old
        if namespace is not None:
            state = {k: v for k, v in state.items() if k[0] == namespace}
        return state

    # -- reads --

    def get(self, rtype, namespace, name):
        with self.lock:
            return to_api(rtype, self._require(rtype, namespace, name))

    # list: the list body for `rtype` in `namespace` (None = all), filtered
    # by the selectors and paginated by limit / continue. resourceVersion
    # semantics follow the real server: unset or NotOlderThan lists the
    # current state; Exact (or a continue token) lists the state at that
    # version, 410 Expired when the history no longer reaches it.
    def list(self, rtype, namespace, query):
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        limit = parse_int(query.get("limit") or "0", "limit")
        start_after = None
        with self.lock:
            at_rv = self.rv
            if query.get("continue"):
                at_rv, start_after = decode_continue(query["continue"])
                if at_rv < self.floor_rv:
                    raise expired("The provided continue parameter is too old to display a "
                                  "consistent list result. You can start a new list without the "
                                  "continue parameter.")
            elif query.get("resourceVersionMatch") == "Exact":
                at_rv = parse_int(query.get("resourceVersion") or "", "resourceVersion")
                if at_rv > self.rv:
                    raise ApiError(504, "Too large resource version: %d, current: %d" % (at_rv, self.rv),
                                   details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                        "message": "Too large resource version"}],
                                            "retryAfterSeconds": 1})
                if at_rv < self.floor_rv:
                    raise expired("The resourceVersion for the provided list is too old.")
            state = self._snapshot(rtype.storage, at_rv, namespace)
        items = [to_api(rtype, obj) for key, obj in sorted(state.items())
                 if start_after is None or list(key) > start_after]
        items = [o for o in items if labels_match(labels, o["metadata"].get("labels"))
                 and fields_match(fields, o)]
        metadata = {"resourceVersion": str(at_rv)}
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            metadata["continue"] = encode_continue(at_rv, [last.get("namespace", ""), last["name"]])
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"kind": rtype.list_kind, "apiVersion": rtype.group_version, "metadata": metadata,
                "items": items}

    # -- writes --

    # create: POST. Checks and normalizes the body, fills in the system
    # fields, and stores it; 409 AlreadyExists, 404 for a missing namespace.
    def create(self, rtype, namespace, body, dry_run=False):
        obj = self._decode(rtype, body)
        metadata = obj.setdefault("metadata", {})
        self._check_namespace_field(rtype, namespace, metadata)
        if not metadata.get("name"):
            if metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + "".join(
                    random.choice(GENERATE_NAME_ALPHABET) for _ in range(GENERATE_NAME_SUFFIX_LEN))
            else:
                raise invalid(rtype.kind, rtype.group, "", [FieldError(
                    "Required", "metadata.name", detail="name or generateName is required")])
        name = metadata["name"]
        if metadata.get("resourceVersion"):
            raise ApiError(500, "resourceVersion should not be set on objects to be created")
        with self.lock:
            if rtype.namespaced and not self._namespace_exists(namespace):
                raise ApiError(404, 'namespaces "%s" not found' % namespace,
                               details={"name": namespace, "kind": "namespaces"})
            self._validate(rtype, obj, namespace, creating=True)
            if self._current(rtype, namespace, name) is not None:
                raise ApiError(409, '%s "%s" already exists' % (rtype.qualified(), name),
                               reason="AlreadyExists", details=error_details(rtype, name))
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = format_time(utc_now())
            for system_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
                metadata.pop(system_field, None)
            if rtype.tracks_generation:
                metadata["generation"] = 1
            self._prepare_new(rtype, obj)
            stored = to_storage(rtype, obj)
            if dry_run:
                return to_api(rtype, canonical(stored))
            return to_api(rtype, self._commit(rtype.storage, namespace if rtype.namespaced else "",
                                              name, stored, None, "ADDED"))

    def _prepare_new(self, rtype, obj):
        """The status a just-created object has on the real server."""
        if rtype is NAMESPACES:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        elif rtype is DEPLOYMENTS:
            obj["status"] = {} if self.manual_status else deployment_status_from_spec(obj, None)
        elif rtype.has_status():
            obj["status"] = {}

    def update(self, rtype, namespace, name, body, dry_run=False):
        with self.lock:
            current = self._require(rtype, namespace, name)
            candidate = self._decode(rtype, body)
            return self._write(rtype, namespace, name, current, candidate, "main", dry_run)

    def patch(self, rtype, namespace, name, content_type, patch_body, dry_run=False):
        with self.lock:
            current = self._require(rtype, namespace, name)
            patched = apply_patch(content_type, to_api(rtype, current), patch_body)
            candidate = self._decode(rtype, patched)
            return self._write(rtype, namespace, name, current, candidate, "main", dry_run)

    def update_status(self, rtype, namespace, name, body, dry_run=False, content_type=None):
        """PUT (content_type None) or PATCH of the status subresource: only
        .status changes; the rest of the body is ignored, as on the real server."""
        with self.lock:
            current = self._require(rtype, namespace, name)
            if content_type is not None:
                body = apply_patch(content_type, to_api(rtype, current), body)
            candidate = self._decode(rtype, body)
            return self._write(rtype, namespace, name, current, candidate, "status", dry_run)

    def deployment_controller_status(self, namespace, name):
        """What the deployment controller writes after a scale: status with
        observedGeneration and a fresh Progressing condition. Always a new
        resourceVersion (on a real cluster the times in it move on)."""
        with self.lock:
            current = self._current(DEPLOYMENTS, namespace, name)
            if current is None:
                return None
            stored = json.loads(json.dumps(current))
            status = stored.setdefault("status", {})
            status["observedGeneration"] = stored["metadata"].get("generation", 1)
            now = format_time(utc_now())
            conditions = [c for c in status.get("conditions") or []
                          if isinstance(c, dict) and c.get("type") != "Progressing"]
            conditions.append({"type": "Progressing", "status": "True", "lastUpdateTime": now,
                               "lastTransitionTime": now, "reason": "ReplicaSetUpdated",
                               "message": 'ReplicaSet "%s" is progressing.' % name})
            status["conditions"] = conditions
            return self._commit(DEPLOYMENTS.storage, namespace, name, stored, current, "MODIFIED")

    def get_scale(self, rtype, namespace, name):
        with self.lock:
            return scale_from_deployment(self._require(rtype, namespace, name))

    # update_scale: PUT (content_type None) or PATCH of deployments/NAME/scale.
    # The Scale's resourceVersion is the Deployment's, so a stale one is a
    # 409 Conflict; the new replica count becomes the Deployment's
    # spec.replicas in one write of the same object.
    def update_scale(self, rtype, namespace, name, body, dry_run=False, content_type=None):
        with self.lock:
            current = self._require(rtype, namespace, name)
            if content_type is not None:
                body = apply_patch(content_type, scale_from_deployment(current), body)
            scale = check_field_types("autoscaling/v1", "Scale", self._body_object(body))
            if scale.get("kind") not in (None, "Scale"):
                raise bad_request('Scale in version "v1" cannot be handled as a Scale: the kind '
                                  'of the object (%s) does not match' % scale.get("kind"))
            metadata = scale.get("metadata") or {}
            self._check_identity(rtype, namespace, name, metadata, current)
            replicas = (scale.get("spec") or {}).get("replicas", 0)
            if replicas < 0:
                raise invalid("Scale", "autoscaling", name, [FieldError(
                    "Invalid", "spec.replicas", replicas, "must be greater than or equal to 0")])
            candidate = json.loads(json.dumps(current))
            candidate["spec"]["replicas"] = replicas
            deployment = self._write(rtype, namespace, name, current, candidate, "scale", dry_run)
            if (self.status_after_scale and rtype is DEPLOYMENTS and not dry_run
                    and deployment["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]):
                # the deployment controller rewrites status right after every
                # scale: a write that still carries the scale's resourceVersion
                # then meets 409, as on a real cluster
                timer = threading.Timer(STATUS_AFTER_SCALE_S, self.deployment_controller_status,
                                        (namespace, name))
                timer.daemon = True
                timer.start()
            return scale_from_deployment(deployment)

    def delete(self, rtype, namespace, name, options, dry_run=False):
        with self.lock:
            current = self._require(rtype, namespace, name)
            preconditions = (options or {}).get("preconditions") or {}
            uid = preconditions.get("uid")
            if uid and uid != current["metadata"].get("uid"):
                raise ApiError(409, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (uid, current["metadata"].get("uid")), reason="Conflict",
                               details=error_details(rtype, name))
            version = preconditions.get("resourceVersion")
            if version and version != current["metadata"].get("resourceVersion"):
                raise ApiError(409, "Precondition failed: ResourceVersion in precondition: %s, "
                               "ResourceVersion in object meta: %s"
                               % (version, current["metadata"].get("resourceVersion")),
                               reason="Conflict", details=error_details(rtype, name))
            if not dry_run:
                self._remove(rtype, namespace, name, current)
            details = error_details(rtype, name, uid=current["metadata"].get("uid"))
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": details}

    def _remove(self, rtype, namespace, name, current):
        """Delete one object; deleting a namespace deletes what is in it."""
        key_namespace = namespace if rtype.namespaced else ""
        if rtype is NAMESPACES:
            for storage, bucket in list(self.objects.items()):
                for (object_namespace, object_name), obj in sorted(bucket.items()):
                    if object_namespace == name and storage != NAMESPACES.storage:
                        self._commit(storage, object_namespace, object_name, None, obj, "DELETED")
        self._commit(rtype.storage, key_namespace, name, None, current, "DELETED")

    def delete_collection(self, rtype, namespace, query, dry_run=False):
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        with self.lock:
            state = self._snapshot(rtype.storage, self.rv, namespace)
            deleted = []
            for (object_namespace, object_name), obj in sorted(state.items()):
                shown = to_api(rtype, obj)
                if labels_match(labels, shown["metadata"].get("labels")) and fields_match(fields, shown):
                    if not dry_run:
                        self._remove(rtype, object_namespace, object_name, obj)
                    deleted.append(list_item(shown))
            return {"kind": rtype.list_kind, "apiVersion": rtype.group_version,
                    "metadata": {"resourceVersion": str(self.rv)}, "items": deleted}

    # -- write helpers (lock held) --

    @staticmethod
    def _body_object(body):
        if isinstance(body, (bytes, str)):
            try:
                body = json.loads(body or b"null")
            except ValueError as exc:
                raise bad_request("the body of the request could not be decoded as JSON: %s" % exc)
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        return body

    def _decode(self, rtype, body):
        """The body as an object of `rtype`'s kind, types checked (400 when it
        would not decode), apiVersion and kind filled in when missing."""
        obj = self._body_object(body)
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind not in (None, "") and kind != rtype.kind:
            raise bad_request('%s in version "%s" cannot be handled as a %s: the kind of the '
                              'object (%s) does not match' % (rtype.kind, rtype.version, rtype.kind, kind))
        if api_version not in (None, "") and api_version != rtype.group_version:
            raise bad_request("the API version in the data (%s) does not match the expected API "
                              "version (%s)" % (api_version, rtype.group_version))
        obj = check_field_types(rtype.group_version, rtype.kind, obj)
        obj["kind"], obj["apiVersion"] = rtype.kind, rtype.group_version
        return canonical(obj)

    def _check_namespace_field(self, rtype, namespace, metadata):
        if not rtype.namespaced:
            metadata.pop("namespace", None)
            return
        if metadata.get("namespace") and metadata["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        metadata["namespace"] = namespace

    def _check_identity(self, rtype, namespace, name, metadata, current):
        """Name, namespace, resourceVersion and uid preconditions of an update."""
        if metadata.get("name") and metadata["name"] != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (metadata["name"], name))
        self._check_namespace_field(rtype, namespace, metadata)
        version = metadata.get("resourceVersion")
        if version not in (None, "", "0"):
            if not version.isdigit():
                raise bad_request("invalid resourceVersion: %s" % version)
            if version != current["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
        uid = metadata.get("uid")
        if uid and uid != current["metadata"].get("uid"):
            raise ApiError(409, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                           % (uid, current["metadata"].get("uid")), reason="Conflict",
                           details=error_details(rtype, name))

    def _validate(self, rtype, obj, namespace, creating):
        name = obj["metadata"].get("name", "")
        errors = []
        problem = name_problem(rtype, name)
        if problem:
            errors.append(FieldError("Invalid", "metadata.name", name, problem))
        if rtype is DEPLOYMENTS:
            default_deployment(obj)
            errors += validate_deployment(obj)
        elif rtype.kind == "Lease":
            errors += validate_lease(obj)
        elif rtype.storage == CORE_EVENTS:
            strict = creating and rtype.group == "events.k8s.io"
            errors += validate_event(to_storage(rtype, obj), namespace, strict)
        if errors:
            raise invalid(rtype.kind, rtype.group, name, errors)

    # _write: the common end of update, patch, status and scale writes.
    # `part` says which part of the candidate counts: "main" keeps the stored
    # status (for resources with a status subresource), "status" keeps all
    # but the status, "scale" changes spec.replicas only. System fields come
    # from the stored object; generation moves when the spec changes; an
    # unchanged object is not written (no new resourceVersion, no event).
    def _write(self, rtype, namespace, name, current, candidate, part, dry_run):
        metadata = candidate.setdefault("metadata", {})
        if part != "scale":
            self._check_identity(rtype, namespace, name, metadata, to_api(rtype, current))
        if part == "status":
            status = candidate.get("status")
            candidate = json.loads(json.dumps(to_api(rtype, current)))
            candidate["status"] = status if status is not None else {}
            metadata = candidate["metadata"]
        old_metadata = current["metadata"]
        metadata["name"] = name
        for system_field in ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                             "deletionGracePeriodSeconds"):
            if system_field in old_metadata:
                metadata[system_field] = old_metadata[system_field]
            else:
                metadata.pop(system_field, None)
        if part == "main" and rtype.has_status():
            if "status" in current:
                candidate["status"] = json.loads(json.dumps(current["status"]))
            else:
                candidate.pop("status", None)
        self._validate(rtype, candidate, namespace, creating=False)
        stored = to_storage(rtype, candidate)
        if rtype.tracks_generation and stored.get("spec") != current.get("spec"):
            metadata["generation"] = old_metadata.get("generation", 0) + 1
        if rtype is DEPLOYMENTS:
            if not self.manual_status and part != "status":
                stored["status"] = deployment_status_from_spec(stored, current.get("status"))
                if stored.get("spec") == current.get("spec"):
                    stored["status"] = current.get("status")
            omit_zero_status_counts(stored)
        stored["metadata"]["resourceVersion"] = old_metadata["resourceVersion"]
        stored = canonical(stored)
        if stored == current or dry_run:
            return to_api(rtype, stored)
        return to_api(rtype, self._commit(rtype.storage, namespace if rtype.namespaced else "",
                                          name, stored, current, "MODIFIED"))

    # -- seeding and control --

    # seed: create or replace one object as given (status included), with no
    # validation beyond the object's shape; a namespaced object's namespace
    # is created when missing. Returns the stored object.
    def seed(self, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            raise bad_request("an object needs apiVersion, kind and metadata")
        rtype = TYPE_BY_KIND.get((obj.get("apiVersion"), obj.get("kind")))
        if rtype is None:
            raise bad_request("no resource serves apiVersion %r kind %r"
                              % (obj.get("apiVersion"), obj.get("kind")))
        obj = check_field_types(rtype.group_version, rtype.kind, obj)
        metadata = obj["metadata"]
        name = metadata.get("name")
        if not name:
            raise bad_request("metadata.name is required")
        namespace = metadata.get("namespace") or ("default" if rtype.namespaced else "")
        if rtype.namespaced:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        with self.lock:
            if rtype.namespaced and not self._namespace_exists(namespace):
                self._store_new(NAMESPACES, "", self._new_namespace(namespace))
            current = self._current(rtype, namespace, name)
            metadata.pop("resourceVersion", None)
            metadata.setdefault("uid", current["metadata"]["uid"] if current else str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", current["metadata"]["creationTimestamp"]
                                if current else format_time(utc_now()))
            if rtype.tracks_generation:
                metadata.setdefault("generation", current["metadata"].get("generation", 0) + 1
                                    if current else 1)
            if rtype is DEPLOYMENTS:
                default_deployment(obj)
                if "status" not in obj:
                    obj["status"] = {} if self.manual_status else deployment_status_from_spec(obj, None)
                omit_zero_status_counts(obj)
            if rtype is NAMESPACES:
                obj.setdefault("status", {"phase": "Active"})
            stored = to_storage(rtype, obj)
            key_namespace = namespace if rtype.namespaced else ""
            return to_api(rtype, self._commit(rtype.storage, key_namespace, name, stored, current,
                                              "MODIFIED" if current else "ADDED"))

    def read_path(self, path):
        """The object or list at an API path, as an authorized GET would return it."""
        info = RequestInfo("GET", path, {})
        if not info.is_resource or info.rtype is None:
            raise unknown_path()
        if info.name:
            if info.subresource == "scale" and info.rtype is DEPLOYMENTS:
                return self.get_scale(info.rtype, info.namespace, info.name)
            return self.get(info.rtype, info.namespace, info.name)
        return self.list(info.rtype, info.namespace or None, {})

    def remove_path(self, path):
        info = RequestInfo("DELETE", path, {})
        if not info.is_resource or info.rtype is None or not info.name:
            raise unknown_path()
        return self.delete(info.rtype, info.namespace, info.name, None)

    def compact(self):
        """Forget the watch history: watches and Exact lists from any earlier
        resourceVersion now get 410 Expired, as after an etcd compaction."""
        with self.lock:
            self.history.clear()
            self.floor_rv = self.rv
            self.changed.notify_all()
            return {"resourceVersion": str(self.rv)}

    def state(self):
        with self.lock:
            return {"resourceVersion": str(self.rv), "historyFloor": str(self.floor_rv),
                    "historyLength": len(self.history),
                    "objects": sum(len(b) for b in self.objects.values())}

    def stop(self):
        with self.lock:
            self.stopping.set()
            self.changed.notify_all()

    # -- watch support --

    # watch_start: where a watch begins. Returns (initial objects to send as
    # ADDED, the resourceVersion the stream continues from, an Expired
    # ApiError or None). Unset or "0" resourceVersion, or sendInitialEvents,
    # start with the current state; an explicit one older than the history
    # floor is expired.
    def watch_start(self, rtype, namespace, query):
        version = query.get("resourceVersion") or ""
        send_initial = query.get("sendInitialEvents") == "true"
        with self.lock:
            if version in ("", "0") or send_initial:
                state = self._snapshot(rtype.storage, self.rv, namespace)
                return [to_api(rtype, o) for _, o in sorted(state.items())], self.rv, None
            start = parse_int(version, "resourceVersion")
            if start < self.floor_rv:
                return [], start, expired("too old resource version: %d (%d)" % (start, self.floor_rv))
            return [], start, None

    def watch_wait(self, after_rv, until):
        """Block until there are changes after `after_rv`, `until` (monotonic)
        passes or the server stops. Returns (records, current rv, expired)."""
        with self.lock:
            while (self.rv <= after_rv and not self.stopping.is_set()
                   and after_rv >= self.floor_rv):
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(remaining)
            if after_rv < self.floor_rv:
                return [], self.rv, True
            records = []
            for record in reversed(self.history):
                if record.rv <= after_rv:
                    break
                records.append(record)
            records.reverse()
            return records, self.rv, False


def parse_int(text, what):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise bad_request("invalid %s: %r" % (what, text))


def encode_continue(at_rv, start_key):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": at_rv, "start": start_key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        return int(decoded["rv"]), list(decoded["start"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: %s" % token)


# ------------------------------------------------------------------ request info

class RequestInfo:
    """What a request addresses, parsed the way the real server does for
    RBAC: verb (get, list, watch, create, update, patch, delete,
    deletecollection; lower-case HTTP method for non-resource paths), API
    group and version, resource, subresource, namespace and name."""

    def __init__(self, method, path, query):
        self.method = method
        self.path = path
        self.verb = method.lower()
        self.api_group = ""
        self.api_version = ""
        self.resource = ""
        self.subresource = ""
        self.namespace = ""
        self.name = ""
        self.is_resource = False
        self.rtype = None
        self.bad_path = False
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        if not segments or segments[0] not in ("api", "apis"):
            return
        if segments[0] == "api":
            if len(segments) < 2:
                return
            self.api_version, rest = segments[1], segments[2:]
        else:
            if len(segments) < 3:
                self.api_group = segments[1] if len(segments) > 1 else ""
                return
            self.api_group, self.api_version, rest = segments[1], segments[2], segments[3:]
        if not rest:
            return
        self.is_resource = True
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        if rest and rest[0] == "namespaces" and len(rest) > 1:
            self.namespace = rest[1]
            if len(rest) > 2 and rest[2] not in ("status", "finalize"):
                rest = rest[2:]
        if not rest or len(rest) > 3:
            self.bad_path = True
            return
        self.resource = rest[0]
        self.name = rest[1] if len(rest) > 1 else ""
        self.subresource = rest[2] if len(rest) > 2 else ""
        self.rtype = TYPE_BY_PATH.get((self.api_group, self.api_version, self.resource))
        watching = watch_path or query.get("watch") in ("true", "1")
        self.verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, self.verb)
        if method == "GET":
            self.verb = "watch" if watching else ("get" if self.name else "list")
        elif method == "DELETE":
            self.verb = "delete" if self.name else "deletecollection"
        self.watch_name = self.name if watch_path else ""
        if watch_path:
            self.name = ""
        # The name RBAC sees: a list or watch whose fieldSelector requires
        # exactly one metadata.name counts as naming that object, as the
        # real server's RequestInfo does (so resourceNames can grant it)
        self.authz_name = self.name or self.watch_name
        if not self.authz_name and self.verb in ("list", "watch"):
            names = [m.group(2) for m in (re.match(r"^metadata\.name\s*(==|=)\s*(.*)$", t)
                                          for t in split_selector_terms(
                                              query.get("fieldSelector") or "")) if m]
            if len(names) == 1 and names[0] and "/" not in names[0] and names[0] not in (".", ".."):
                self.authz_name = names[0]


# ------------------------------------------------------------------ discovery

def storage_version_hash(rtype):
    digest = hashlib.sha256(("%s/%s" % (rtype.group_version, rtype.kind)).encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def legacy_resource_list(group, version):
    resources = []
    for rtype in RESOURCE_TYPES:
        if (rtype.group, rtype.version) != (group, version):
            continue
        entry = {"name": rtype.resource, "singularName": rtype.singular,
                 "namespaced": rtype.namespaced, "kind": rtype.kind, "verbs": rtype.verbs}
        if rtype.short_names:
            entry["shortNames"] = rtype.short_names
        if rtype.categories:
            entry["categories"] = rtype.categories
        if not rtype.review:
            entry["storageVersionHash"] = storage_version_hash(rtype)
        resources.append(entry)
        for sub, body_kind in sorted(rtype.subresources.items()):
            sub_entry = {"name": "%s/%s" % (rtype.resource, sub), "singularName": "",
                         "namespaced": rtype.namespaced}
            if body_kind:
                sub_entry.update(group=body_kind[0], version=body_kind[1], kind=body_kind[2])
            else:
                sub_entry["kind"] = rtype.kind
            sub_entry["verbs"] = SUBRESOURCE_VERBS
            resources.append(sub_entry)
    body = {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "%s/%s" % (group, version) if group else version,
            "resources": resources}
    if not group:
        del body["apiVersion"]
    return body


def group_entry(group):
    versions = [{"groupVersion": "%s/%s" % (g, v), "version": v} for g, v in group_versions() if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def aggregated_group(group):
    """One APIGroupDiscovery (apidiscovery.k8s.io/v2) entry."""
    versions = []
    for g, version in group_versions():
        if g != group:
            continue
        resources = []
        for rtype in RESOURCE_TYPES:
            if (rtype.group, rtype.version) != (g, version):
                continue
            entry = {"resource": rtype.resource,
                     "responseKind": {"group": "", "version": "", "kind": rtype.kind},
                     "scope": "Namespaced" if rtype.namespaced else "Cluster",
                     "singularResource": rtype.singular, "verbs": rtype.verbs}
            if rtype.short_names:
                entry["shortNames"] = rtype.short_names
            if rtype.categories:
                entry["categories"] = rtype.categories
            subresources = []
            for sub, body_kind in sorted(rtype.subresources.items()):
                kind = ({"group": body_kind[0], "version": body_kind[1], "kind": body_kind[2]}
                        if body_kind else {"group": "", "version": "", "kind": rtype.kind})
                subresources.append({"subresource": sub, "responseKind": kind,
                                     "verbs": SUBRESOURCE_VERBS})
            if subresources:
                entry["subresources"] = subresources
            resources.append(entry)
        versions.append({"version": version, "resources": resources, "freshness": "Current"})
    metadata = {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
    return {"metadata": metadata, "versions": versions}


def aggregated_list(groups):
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": [aggregated_group(g) for g in groups]}


def wants_aggregated(accept):
    for media in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if (params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2"
                and params.get("as") == "APIGroupDiscoveryList"):
            return True
    return False


# openapi_v3_document: a minimal OpenAPI v3 document for one group/version:
# the object paths with their verbs, the x-kubernetes-group-version-kind of
# each operation and the fieldValidation query parameter. That is what
# kubectl's field-validation check reads to decide the server validates
# fields itself (so create/apply need no client-side schema). No schemas:
# kubectl falls back to its built-in types for strategic merge patches.
def openapi_v3_document(group, version):
    paths = {}
    write_params = [
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    ]
    prefix = "/apis/%s/%s" % (group, version) if group else "/api/%s" % version
    for rtype in RESOURCE_TYPES:
        if (rtype.group, rtype.version) != (group, version):
            continue
        gvk = {"group": group, "version": version, "kind": rtype.kind}
        base = prefix + ("/namespaces/{namespace}/" if rtype.namespaced else "/") + rtype.resource
        ok = {"200": {"description": "OK"}}
        if rtype.review:
            paths[base] = {"post": {"operationId": "create" + rtype.kind, "parameters": write_params,
                                    "responses": ok, "x-kubernetes-action": "post",
                                    "x-kubernetes-group-version-kind": gvk}}
            continue

        def operation(action, verb, kind=gvk, params=()):
            return {"operationId": "%s%s" % (verb, rtype.kind), "parameters": list(params),
                    "responses": ok, "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": kind}

        paths[base] = {"get": operation("list", "list"),
                       "post": operation("post", "create", params=write_params)}
        paths[base + "/{name}"] = {
            "get": operation("get", "read"),
            "put": operation("put", "replace", params=write_params),
            "patch": operation("patch", "patch", params=write_params),
            "delete": operation("delete", "delete")}
        for sub, body_kind in rtype.subresources.items():
            kind = ({"group": body_kind[0], "version": body_kind[1], "kind": body_kind[2]}
                    if body_kind else gvk)
            paths[base + "/{name}/" + sub] = {
                "get": operation("get", "read", kind),
                "put": operation("put", "replace", kind, write_params),
                "patch": operation("patch", "patch", kind, write_params)}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def openapi_v3_root():
    paths = {}
    for group, version in group_versions():
        key = "apis/%s/%s" % (group, version) if group else "api/%s" % version
        digest = hashlib.sha512(json.dumps(openapi_v3_document(group, version),
                                           sort_keys=True).encode()).hexdigest().upper()[:128]
        paths[key] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (key, digest)}
    return {"paths": paths}


# ------------------------------------------------------------------ tables

def column(name, kind="string", description="", priority=0, fmt=""):
    return {"name": name, "type": kind, "format": fmt, "description": description, "priority": priority}


NAME_COLUMN = column("Name", fmt="name", description="Name must be unique within a namespace.")
AGE_COLUMN = column("Age", description="CreationTimestamp is a timestamp representing the server "
                    "time when this object was created.")


def deployment_cells(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return ["%d/%d" % (status.get("readyReplicas", 0), spec.get("replicas", 1)),
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
            age_of(obj["metadata"].get("creationTimestamp")),
            ",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers),
            selector_string(spec.get("selector"))]


def event_cells(obj):
    core = to_storage(TYPE_BY_STORAGE[CORE_EVENTS], obj) if obj.get("apiVersion") != "v1" else obj
    involved = core.get("involvedObject") or {}
    series = core.get("series") or {}
    last = (series.get("lastObservedTime") or core.get("lastTimestamp") or core.get("eventTime")
            or obj["metadata"].get("creationTimestamp"))
    first = core.get("firstTimestamp") or core.get("eventTime") or last
    source = core.get("reportingComponent") or (core.get("source") or {}).get("component", "")
    return [age_of(last), core.get("type", ""), core.get("reason", ""),
            "%s/%s" % ((involved.get("kind") or "").lower(), involved.get("name", "")),
            involved.get("fieldPath", ""), source, core.get("message", ""), age_of(first),
            series.get("count") or core.get("count") or 1, obj["metadata"]["name"]]


# Per resource: the Table columns the real server prints, and the cells of
# one object (after the Name cell). Others get Name and Created At.
TABLE_FORMATS = {
    ("apps", "deployments"): (
        [column("Ready", description="Number of the pod with ready state"),
         column("Up-to-date", "integer", "Total number of non-terminated pods targeted by this "
                "deployment that have the desired template spec."),
         column("Available", "integer", "Total number of available pods (ready for at least "
                "minReadySeconds) targeted by this deployment."),
         AGE_COLUMN,
         column("Containers", priority=1, description="Names of each container in the template."),
         column("Images", priority=1, description="Images referenced by each container in the template."),
         column("Selector", priority=1, description="Label selector for pods.")],
        deployment_cells),
    ("coordination.k8s.io", "leases"): (
        [column("Holder", description="holderIdentity contains the identity of the holder of a "
                "current lease."), AGE_COLUMN],
        lambda o: [(o.get("spec") or {}).get("holderIdentity", ""),
                   age_of(o["metadata"].get("creationTimestamp"))]),
    ("", "namespaces"): (
        [column("Status", description="The status of the namespace"), AGE_COLUMN],
        lambda o: [(o.get("status") or {}).get("phase", ""), age_of(o["metadata"].get("creationTimestamp"))]),
    ("", "configmaps"): (
        [column("Data", "integer", "Data contains the configuration data."), AGE_COLUMN],
        lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                   age_of(o["metadata"].get("creationTimestamp"))]),
}
EVENT_COLUMNS = [column("Last Seen"), column("Type"), column("Reason"), column("Object"),
                 column("Subobject", priority=1), column("Source", priority=1), column("Message"),
                 column("First Seen", priority=1), column("Count", "integer", priority=1),
                 column("Name", priority=1)]


def table_for(rtype, objects, list_metadata, include_object):
    """A meta.k8s.io/v1 Table of `objects`, as the real server answers an
    Accept of application/json;as=Table."""
    rows = []
    if rtype.storage == CORE_EVENTS:
        columns, cells_of = EVENT_COLUMNS, event_cells
    elif (rtype.group, rtype.resource) in TABLE_FORMATS:
        extra, cells = TABLE_FORMATS[(rtype.group, rtype.resource)]
        columns = [NAME_COLUMN] + extra
        cells_of = lambda o, cells=cells: [o["metadata"]["name"]] + cells(o)
    else:
        columns = [NAME_COLUMN, column("Created At", "date", "CreationTimestamp is a timestamp "
                                       "representing the server time when this object was created.")]
        cells_of = lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]
    for obj in objects:
        row = {"cells": cells_of(obj)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_metadata,
            "columnDefinitions": columns, "rows": rows}


def accept_params(accept):
    """The `as` (Table, PartialObjectMetadata...) the client asks for first, or ""."""
    for media in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if params.get("as") in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList"):
            return params["as"]
        if media.split(";")[0].strip() in ("application/json", "*/*", "application/*"):
            return ""
    return ""


def accepts_json(accept):
    if not accept:
        return True
    for media in accept.split(","):
        base = media.split(";")[0].strip().lower()
        if base in ("application/json", "*/*", "application/*", "application/yaml"):
            return True
    return False


# ------------------------------------------------------------------ auth

class TokenBook:
    """The static token file (lines `TOKEN USER [GROUP,...]`), read again
    whenever it changes on disk so tests can rotate tokens."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.signature = None
        self.users = {}

    def user_for(self, token):
        with self.lock:
            try:
                info = os.stat(self.path)
                signature = (info.st_mtime_ns, info.st_size, info.st_ino)
            except OSError:
                signature = None
            if signature != self.signature:
                self.signature = signature
                self.users = self._read()
            return self.users.get(token)

    def _read(self):
        users = {}
        try:
            with open(self.path) as handle:
                for line in handle:
                    fields = line.split()
                    if len(fields) >= 2 and not fields[0].startswith("#"):
                        groups = fields[2].split(",") if len(fields) > 2 else []
                        users[fields[0]] = (fields[1], groups)
        except OSError:
            pass
        return users


def certificate_user(connection):
    """(user, groups) from a verified TLS client certificate, or None."""
    try:
        cert = connection.getpeercert()
    except (ValueError, AttributeError, OSError):
        return None
    if not cert:
        return None
    user, groups = None, []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return (user, groups) if user else None


# ------------------------------------------------------------------ access reviews

# Field numbers of the authorization.k8s.io/v1 messages (generated.proto):
# ResourceAttributes, then NonResourceAttributes.
RESOURCE_ATTRIBUTES = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
NON_RESOURCE_ATTRIBUTES = ("path", "verb")
# ResourceAttributes' selectors (fields 8 and 9): accepted, not evaluated
# (RBAC does not look at them either).
SELECTOR_ATTRIBUTES = ("fieldSelector", "labelSelector")


# The rules review's answer for one who may do anything: the superuser
# group, or anyone under AlwaysAllow.
EVERYTHING_RULES = ([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                    [{"verbs": ["*"], "nonResourceURLs": ["*"]}])


def verb_takes_body(verb):
    """Whether a request with this verb carries an object to decode (a
    patch carries a patch document, typed by its own content types)."""
    return verb in ("create", "update")


def review_spec_from_json(rtype, body):
    """The spec of a review sent as JSON (a missing spec is an empty one)."""
    obj = json.loads(body or b"{}")
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if obj.get("kind") not in (None, rtype.kind) or \
            obj.get("apiVersion") not in (None, rtype.group_version):
        raise ValueError("%s/%s is not %s" % (obj.get("apiVersion"), obj.get("kind"), rtype.kind))
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError("spec is not an object")
    if rtype.kind == "SelfSubjectRulesReview":
        if not isinstance(spec.get("namespace", ""), str):
            raise ValueError("spec.namespace is not a string")
        return spec
    for key, strings in (("resourceAttributes", RESOURCE_ATTRIBUTES),
                         ("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES)):
        attributes = spec.get(key)
        if attributes is None:
            continue
        if not isinstance(attributes, dict):
            raise ValueError("spec.%s is not an object" % key)
        for name, value in attributes.items():
            # fieldSelector and labelSelector (objects) are read and ignored
            if (name in strings or name not in SELECTOR_ATTRIBUTES) and not isinstance(value, str):
                raise ValueError("spec.%s.%s is not a string" % (key, name))
    return spec


def review_spec_from_protobuf(rtype, body):
    """The spec of a review sent as protobuf, as its JSON form (empty
    strings dropped, as the JSON encoding omits them)."""
    api_version, kind, raw = k8s_protobuf.unwrap(body)
    if (api_version, kind) != (rtype.group_version, rtype.kind):
        raise ValueError("%s/%s is not %s" % (api_version, kind, rtype.kind))
    spec_fields = k8s_protobuf.message(k8s_protobuf.decode(raw), 2) or {}
    if rtype.kind == "SelfSubjectRulesReview":
        namespace = k8s_protobuf.text(spec_fields, 1)
        return {"namespace": namespace} if namespace else {}
    spec = {}
    for number, key, names in ((1, "resourceAttributes", RESOURCE_ATTRIBUTES),
                               (2, "nonResourceAttributes", NON_RESOURCE_ATTRIBUTES)):
        fields = k8s_protobuf.message(spec_fields, number)
        if fields is not None:
            values = {name: k8s_protobuf.text(fields, i + 1) for i, name in enumerate(names)}
            spec[key] = {name: value for name, value in values.items() if value}
    return spec


def access_review_errors(spec):
    """The validation errors of a SelfSubjectAccessReview spec: exactly one
    of resourceAttributes and nonResourceAttributes."""
    has_resource = spec.get("resourceAttributes") is not None
    has_path = spec.get("nonResourceAttributes") is not None
    if has_resource and has_path:
        return [FieldError("Invalid", "spec.nonResourceAttributes", spec["nonResourceAttributes"],
                           "cannot be specified in combination with resourceAttributes")]
    if not has_resource and not has_path:
        return [FieldError("Invalid", "spec.resourceAttributes", "null",
                           "exactly one of nonResourceAttributes or resourceAttributes must be "
                           "specified")]
    return []


def review_to_protobuf(rtype, spec, status):
    """The object message of a review's answer (metadata, spec, status)."""
    encode = k8s_protobuf.encode
    if rtype.kind == "SelfSubjectRulesReview":
        spec_raw = encode([(1, spec.get("namespace", ""))])
        rules = [(1, encode([(1, v) for v in r["verbs"]] + [(2, g) for g in r["apiGroups"]] +
                            [(3, x) for x in r["resources"]] +
                            [(4, n) for n in r.get("resourceNames", [])]))
                 for r in status["resourceRules"]]
        rules += [(2, encode([(1, v) for v in r["verbs"]] + [(2, u) for u in r["nonResourceURLs"]]))
                  for r in status["nonResourceRules"]]
        status_raw = encode(rules + [(3, status["incomplete"]),
                                     (4, status.get("evaluationError", ""))])
    else:
        parts = []
        for number, key, names in ((1, "resourceAttributes", RESOURCE_ATTRIBUTES),
                                   (2, "nonResourceAttributes", NON_RESOURCE_ATTRIBUTES)):
            if spec.get(key) is not None:
                parts.append((number, encode([(i + 1, spec[key].get(name, ""))
                                              for i, name in enumerate(names)])))
        spec_raw = encode(parts)
        status_raw = encode([(1, status["allowed"]), (2, status.get("reason", "")),
                             (3, status.get("evaluationError", "")), (4, status.get("denied", False))])
    return encode([(1, b""), (2, spec_raw), (3, status_raw)])


class RbacAuthorizer:
    """--authorization-mode RBAC: every request is authorized, as the real
    server's RBAC authorizer does, against the Roles, ClusterRoles and
    bindings stored at that moment (so `kubectl apply` of rendered manifests
    takes effect at once). The group system:masters may do anything, as the
    real server's superuser group; every authenticated user is also in
    system:authenticated, which has the bootstrap roles' rules (BOOTSTRAP_RULES).
    Non-resource paths are granted by nonResourceURLs rules bound cluster-wide.
    Anything else not granted is 403 Forbidden, worded as the real server
    words it."""

    # The real server's bootstrap ClusterRoles system:basic-user,
    # system:discovery and system:public-info-viewer, each bound by a
    # ClusterRoleBinding of its name to system:authenticated (the last also
    # to system:unauthenticated): access reviews of oneself, discovery,
    # /version, OpenAPI and the health paths. Built in rather than stored,
    # so a test's `kubectl get clusterroles` shows only what it applied;
    # the access review's reason names them as the real one does.
    BOOTSTRAP_ROLES = [
        ("system:basic-user", [
            {"apiGroups": ["authorization.k8s.io"],
             "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
             "verbs": ["create"]},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
             "verbs": ["create"]}], ["system:authenticated"]),
        ("system:discovery", [
            {"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                 "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
             "verbs": ["get"]}], ["system:authenticated"]),
        ("system:public-info-viewer", [
            {"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
             "verbs": ["get"]}], ["system:authenticated", "system:unauthenticated"]),
    ]
    BOOTSTRAP_RULES = [rule for _, rules, _ in BOOTSTRAP_ROLES for rule in rules]
    BOOTSTRAP_GRANTS = rbac_rules.cluster_wide_grants(BOOTSTRAP_RULES)
    BOOTSTRAP_OBJECTS = [obj for name, rules, groups in BOOTSTRAP_ROLES for obj in (
        {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules},
        {"kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                      for group in groups]})]

    def __init__(self, cluster):
        self.cluster = cluster

    def _grants(self, user, groups):
        """Everything `user` in `groups` is granted: the stored RBAC's grants
        plus the bootstrap ones; None for system:masters (anything)."""
        groups = list(groups) + ["system:authenticated"]
        if "system:masters" in groups:
            return None
        return (rbac_rules.rules_for_user(self.cluster.rbac_objects(), user, groups)
                | self.BOOTSTRAP_GRANTS)

    def review(self, user, groups, record=None, path=None):
        """An access review's (allowed, reason), its verb taken as written:
        allowed with no reason for system:masters, which the real server
        allows before RBAC is asked; else as RBAC decides, the reason naming
        the binding that allows it (rbac_rules.allowed_by, the bootstrap
        bindings first), none for a denial."""
        groups = list(groups) + ["system:authenticated"]
        if "system:masters" in groups:
            return True, ""
        reason = rbac_rules.allowed_by(self.BOOTSTRAP_OBJECTS + list(self.cluster.rbac_objects()),
                                       user, groups, record, path, literal_verb=True)
        return reason is not None, reason or ""

    def _granted(self, user, groups, record, literal_verb=False):
        """Whether the stored RBAC lets `user` in `groups` (plus
        system:authenticated) make the request `record` (rbac_rules.granted's
        shape); system:masters may do anything."""
        grants = self._grants(user, groups)
        return grants is None or rbac_rules.granted(grants, record, literal_verb)

    def allows(self, info, user, groups):
        """Whether `user` in `groups` may make the request `info`."""
        if not info.is_resource:
            return self.allows_path(user, groups, info.verb, info.path)
        return self._granted(user, groups, {
            "verb": info.verb, "api_group": info.api_group, "resource": info.resource,
            "subresource": info.subresource, "namespace": info.namespace,
            "name": info.authz_name})

    def allows_path(self, user, groups, verb, path):
        """Whether `user` in `groups` may `verb` (lower-case method) the
        non-resource `path`."""
        grants = self._grants(user, groups)
        return grants is None or rbac_rules.granted_path(grants, verb, path)

    def may_impersonate(self, user, groups, resource, name, namespace=""):
        """Whether `user` may act as the user, group or service account `name`:
        the `impersonate` verb on users, groups or serviceaccounts (core group)."""
        return self._granted(user, groups, {"verb": "impersonate", "api_group": "",
                                            "resource": resource, "namespace": namespace,
                                            "name": name})

    def rules_review(self, user, groups, namespace):
        """A SelfSubjectRulesReview's status for `user` in `groups`: the rules
        reaching `namespace` as the roles wrote them. For system:masters, the
        real server lists the rules of cluster-admin (bound to that group by
        a bootstrap ClusterRoleBinding: "*" everywhere) and the bootstrap
        roles'."""
        groups = list(groups) + ["system:authenticated"]
        if "system:masters" in groups:
            resource_rules, path_rules = rbac_rules.rules_in_namespace(
                [], user, groups, namespace, self.BOOTSTRAP_RULES)
            return EVERYTHING_RULES[0] + resource_rules, EVERYTHING_RULES[1] + path_rules
        return rbac_rules.rules_in_namespace(self.cluster.rbac_objects(), user, groups, namespace,
                                             self.BOOTSTRAP_RULES)


# ------------------------------------------------------------------ faults

FAULT_MATCH_FIELDS = ("verb", "resource", "subresource", "namespace", "name", "api_group",
                      "user", "method")
FAULT_FIELDS = FAULT_MATCH_FIELDS + ("path", "status", "retry_after", "delay_s",
                                     "answer_delay_s", "count",
                                     "probability", "message", "reason", "reset", "status_write",
                                     "silent")


class FaultBook:
    """Injected faults. A rule matches a request when every match field it
    names equals the request's (a list means any of; `path` is a prefix).
    The first matching rule applies: it answers `delay_s` late, then with
    `status` (a Status body, Retry-After when `retry_after`), or closes the
    connection (`reset`), or lets the normal answer through.
    `answer_delay_s` holds the answer back instead, after the request has
    taken effect: a write the server applied whose answer is slow (a
    client that gives up on it cannot tell whether it was). `status_write`
    first rewrites the named Deployment's status as the deployment
    controller does after a scale (a new resourceVersion), so a write that
    carries the one read before meets a real 409. A watch hit by a `silent`
    rule is answered 200 and then sent no byte until its timeoutSeconds (a
    stuck proxy, a server that lost the watch). `count` bounds
    how many requests a rule hits; `probability` makes it random."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.next_id = 1

    def add(self, rule):
        if not isinstance(rule, dict):
            raise bad_request("a fault is a JSON object")
        unknown = sorted(set(rule) - set(FAULT_FIELDS) - {"id", "hits"})
        if unknown:
            raise bad_request("unknown fault fields: %s" % ", ".join(unknown))
        status = rule.get("status")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise bad_request("status must be an HTTP status code")
        count = rule.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise bad_request("count must be a positive integer")
        delay = rule.get("delay_s", 0)
        if not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_FAULT_DELAY_S:
            raise bad_request("delay_s must be between 0 and %g" % MAX_FAULT_DELAY_S)
        answer_delay = rule.get("answer_delay_s", 0)
        if not isinstance(answer_delay, (int, float)) or not 0 <= answer_delay <= MAX_FAULT_DELAY_S:
            raise bad_request("answer_delay_s must be between 0 and %g" % MAX_FAULT_DELAY_S)
        if answer_delay and (rule.get("status") is not None or rule.get("reset")):
            raise bad_request("answer_delay_s holds back the answer of a request that took "
                              "effect; with status or reset, use delay_s")
        probability = rule.get("probability", 1.0)
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise bad_request("probability must be between 0 and 1")
        retry_after = rule.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, (int, float)) or retry_after < 0):
            raise bad_request("retry_after must be a number of seconds")
        with self.lock:
            stored = dict(rule, id=self.next_id, hits=0)
            stored.setdefault("count", None)
            self.next_id += 1
            self.rules.append(stored)
            return dict(stored)

    def list(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def clear(self, rule_id=None):
        with self.lock:
            before = len(self.rules)
            self.rules = [r for r in self.rules if rule_id is not None and r["id"] != rule_id]
            return before - len(self.rules)

    def take(self, info, user):
        """The rule that hits this request (its hit counted), or None."""
        facts = {"verb": info.verb, "resource": info.resource, "subresource": info.subresource,
                 "namespace": info.namespace, "name": info.name or getattr(info, "watch_name", ""),
                 "api_group": info.api_group, "user": user, "method": info.method}
        with self.lock:
            for rule in self.rules:
                if not all(self._field_matches(rule[f], facts[f]) for f in FAULT_MATCH_FIELDS if f in rule):
                    continue
                if "path" in rule and not info.path.startswith(rule["path"]):
                    continue
                if random.random() >= rule.get("probability", 1.0):
                    continue
                rule["hits"] += 1
                if rule["count"] is not None:
                    rule["count"] -= 1
                    if rule["count"] <= 0:
                        self.rules.remove(rule)
                return dict(rule)
        return None

    @staticmethod
    def _field_matches(wanted, actual):
        if isinstance(wanted, list):
            return actual in wanted
        return wanted == actual


def fault_error(rule, info, user):
    """The ApiError an injected fault answers with, worded like the real one."""
    code = rule["status"]
    rtype = info.rtype
    target = info.name or getattr(info, "watch_name", "")
    headers = {}
    if rule.get("retry_after") is not None:
        headers["Retry-After"] = str(int(-(-rule["retry_after"] // 1)))
    details = None
    resource_label = info.resource + ("/" + info.subresource if info.subresource else "")
    if code == 401:
        message = "Unauthorized"
    elif code == 403 and not info.is_resource:
        message = 'forbidden: User "%s" cannot %s path "%s"' % (user, info.verb, info.path)
        details = {}
    elif code == 403:
        where = ' in the namespace "%s"' % info.namespace if info.namespace else " at the cluster scope"
        # the resource as the request named it, known to this server or not
        qualified = info.resource + ("." + info.api_group if info.api_group else "")
        subject = '%s "%s"' % (qualified, target) if target else qualified
        message = ('%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s"%s'
                   % (subject, user, info.verb, resource_label, info.api_group, where))
        details = dict({"name": target} if target else {},
                       **({"group": info.api_group} if info.api_group else {}), kind=info.resource)
    elif code == 404:
        message = ('%s "%s" not found' % (rtype.qualified(), target) if rtype and target
                   else "the server could not find the requested resource")
        details = error_details(rtype, target) if rtype and target else {}
    elif code == 409:
        if rtype and target:
            return ApiError(409, rule.get("message") or conflict(rtype, target).message,
                            reason=rule.get("reason") or "Conflict",
                            details=error_details(rtype, target), headers=headers)
        message = "Operation cannot be fulfilled: the object has been modified"
    elif code == 410:
        message = "The resourceVersion for the provided watch is too old."
    elif code == 429:
        message = "Too many requests, please try again later."
        details = {"causes": [{"message": "client rate limiter"}]}
        if rule.get("retry_after") is not None:
            details["retryAfterSeconds"] = int(headers["Retry-After"])
    elif code == 500:
        message = "Internal error occurred: injected fault"
        details = {"causes": [{"message": "injected fault"}]}
    elif code == 503:
        message = "the server is currently unable to handle the request"
        details = {"causes": [{"reason": "UnexpectedServerResponse", "message": "service unavailable"}]}
        if rule.get("retry_after") is not None:
            details["retryAfterSeconds"] = int(headers["Retry-After"])
    elif code == 504:
        message = "Timeout: request did not complete within the allotted timeout"
        details = {"causes": [{"reason": "Timeout", "message": "context deadline exceeded"}]}
    else:
        message = "injected fault: HTTP %d" % code
    return ApiError(code, rule.get("message") or message, reason=rule.get("reason"),
                    details=details, headers=headers)


# ------------------------------------------------------------------ request log

class RequestLog:
    """One JSON record per API request, appended to the log file and kept
    (bounded) in memory for the control port. Tokens are never recorded."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.records = collections.deque(maxlen=REQUEST_LOG_MEMORY_LIMIT)
        self.sequence = 0
        self.handle = open(path, "a", encoding="utf-8") if path else None

    def append(self, record):
        with self.lock:
            self.sequence += 1
            record["seq"] = self.sequence
            self.records.append(record)
            if self.handle:
                self.handle.write(json.dumps(record, separators=(",", ":")) + "\n")
                self.handle.flush()

    def since(self, sequence=0):
        with self.lock:
            return [r for r in self.records if r["seq"] > sequence]

    def reset(self):
        with self.lock:
            count = len(self.records)
            self.records.clear()
            return count

    def close(self):
        with self.lock:
            if self.handle:
                self.handle.close()
                self.handle = None


# ------------------------------------------------------------------ API handler

class ConnectionReset(Exception):
    """Raised to drop the connection without an answer (a `reset` fault)."""


class ApiHandler(BaseHTTPRequestHandler):
    """One HTTPS connection to the API port (HTTP/1.1, kept alive)."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT_S
    wbufsize = 1 << 16
    answer_delay_s = 0   # set per request by an answer_delay_s fault

    def log_message(self, fmt, *args):
        pass

    def handle_expect_100(self):
        """Answer `Expect: 100-continue` at once (libcurl sends it before
        large bodies and otherwise waits a second); the write buffer would
        hold the interim answer back."""
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    # -- responses --

    def send_head(self, code, content_type, headers=(), length=None):
        if self.answer_delay_s:   # an answer_delay_s fault: applied, answered late
            self.server.cluster.stopping.wait(self.answer_delay_s)
            self.answer_delay_s = 0
        self.send_response_only(code)
        self.send_header("Date", self.date_time_string())
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", content_type)
        for key, value in headers:
            self.send_header(key, value)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if length is None:
            self.wfile.flush()   # a stream's head goes out before its first event
        self.record_status(code)

    def send_body(self, code, body, content_type=STATUS_JSON, headers=()):
        if isinstance(body, dict) and 200 <= code < 300:
            self.record_result(body)
        if not isinstance(body, bytes):
            body = (json.dumps(body, separators=(",", ":")) + "\n").encode()
        self.send_head(code, content_type, list(headers), len(body))
        self.wfile.write(body)

    def send_error_status(self, error):
        self.send_body(error.code, error.status(), headers=list(error.headers.items()))

    # -- request log --

    def record_result(self, obj):
        """For a successful write, note in the log record what it left
        behind: the object's resourceVersion, and spec.replicas (Deployments,
        Scales) or the holder (Leases). Tests map a later write's
        resourceVersion back to the state its author had read."""
        if self.record is None or self.command not in ("POST", "PUT", "PATCH"):
            return
        metadata = obj.get("metadata")
        spec = obj.get("spec")
        if not isinstance(metadata, dict) or "resourceVersion" not in metadata:
            return
        result = {"resourceVersion": metadata["resourceVersion"]}
        if isinstance(spec, dict):
            if "replicas" in spec:
                result["replicas"] = spec["replicas"]
            if "holderIdentity" in spec or obj.get("kind") == "Lease":
                result["holder"] = spec.get("holderIdentity")
        self.record["result"] = result

    def record_status(self, code):
        if self.record is not None and self.record.get("status") is None:
            self.record["status"] = code
            self.record["latency_s"] = round(time.time() - self.record["t"], 6)
            self.server.request_log.append(self.record)

    def begin_record(self, info, query, body):
        parsed = None
        if self.command in ("POST", "PUT", "PATCH") and body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        self.record = {"t": self.started, "method": self.command, "path": info.path, "query": query,
                       "verb": info.verb, "api_group": info.api_group, "resource": info.resource,
                       "subresource": info.subresource, "namespace": info.namespace,
                       "name": info.name or getattr(info, "watch_name", ""), "user": None,
                       "status": None, "fault": False,
                       "content_type": self.headers.get("Content-Type"), "body": parsed,
                       "user_agent": self.headers.get("User-Agent"),
                       "via": self.headers.get("Via")}

    # -- dispatch --

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise ApiError(413, "Request entity too large: limit is 3145728")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "Request entity too large: limit is 3145728")
        return self.rfile.read(length) if length > 0 else b""

    # dispatch: every API request. Reads the body, authenticates, applies an
    # injected fault, routes, and always answers with a Status on error; the
    # log record is written when the status line goes out.
    def dispatch(self):
        self.started = time.time()
        self.answer_delay_s = 0
        self.record = None
        split = urlsplit(self.path)
        query = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(key, value)
        info = RequestInfo(self.command, split.path, query)
        try:
            body = self.read_body()
        except ApiError as error:
            self.begin_record(info, query, b"")
            self.close_connection = True
            self.send_error_status(error)
            return
        except (ValueError, OSError):
            self.close_connection = True
            return
        self.begin_record(info, query, body)
        server = self.server
        self.silent_watch = False
        try:
            if split.path in HEALTH_PATHS:
                self.send_body(200, b"ok", "text/plain; charset=utf-8")
                return
            identity = self.authenticate()
            if identity is None:
                raise ApiError(401, "Unauthorized")
            self.record["user"] = identity[0]
            identity = self.impersonate(identity)
            self.identity = identity
            user = identity[0]
            self.record["user"] = user
            if server.authorizer is not None and not server.authorizer.allows(info, user, identity[1]):
                self.record["forbidden"] = True
                raise fault_error({"status": 403}, info, user)
            rule = server.faults.take(info, user)
            if rule is not None:
                self.record["fault"] = True
                if rule.get("delay_s"):
                    server.cluster.stopping.wait(rule["delay_s"])
                if rule.get("status_write") and info.namespace and info.name:
                    server.cluster.deployment_controller_status(info.namespace, info.name)
                if rule.get("reset"):
                    raise ConnectionReset()
                self.silent_watch = bool(rule.get("silent"))
                self.answer_delay_s = rule.get("answer_delay_s", 0)
                if rule.get("status") is not None:
                    raise fault_error(rule, info, user)
            self.route(info, query, body)
        except ApiError as error:
            self.send_error_status(error)
        except ConnectionReset:
            self.close_connection = True
            if self.record is not None and self.record.get("status") is None:
                self.record["latency_s"] = round(time.time() - self.started, 6)
                server.request_log.append(self.record)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception as exc:   # a bug in the fake: answer 500 and say where
            traceback.print_exc()
            if self.record is not None and self.record.get("status") is None:
                self.send_error_status(ApiError(500, "Internal error occurred: %s" % exc))
            else:
                self.close_connection = True

    def impersonate(self, identity):
        """The identity a request acts as: its own, or the one its
        Impersonate-User / Impersonate-Group headers name, when the
        authorizer lets the requester impersonate it (AlwaysAllow does; under
        RBAC, system:masters or the impersonate verb), else 403 worded as the
        real server words it. An impersonated service account gets its
        groups, as from its token. The log records the requester too."""
        target = self.headers.get("Impersonate-User")
        wanted_groups = self.headers.get_all("Impersonate-Group") or []
        if target is None:
            if wanted_groups:
                raise ApiError(500, "Internal error occurred: requested [%s] without impersonating "
                                    "a user" % ", ".join("{Group  %s}" % g for g in wanted_groups))
            return identity
        authorizer = self.server.authorizer
        user, groups = identity
        sa = re.match(r"^system:serviceaccount:([^:]+):([^:]+)$", target)
        checks = ([("serviceaccounts", sa.group(2), sa.group(1))] if sa else
                  [("users", target, "")]) + [("groups", g, "") for g in wanted_groups]
        for resource, name, namespace in checks:
            if authorizer is not None and not authorizer.may_impersonate(user, groups, resource,
                                                                         name, namespace):
                where = (' in the namespace "%s"' % namespace if namespace
                         else " at the cluster scope")
                self.record["forbidden"] = True
                raise ApiError(403, '%s "%s" is forbidden: User "%s" cannot impersonate resource '
                                    '"%s" in API group ""%s' % (resource, name, user, resource,
                                                                where),
                               details={"name": name, "kind": resource})
        new_groups = list(wanted_groups)
        if sa and not wanted_groups:
            new_groups = rbac_rules.service_account_user(sa.group(1), sa.group(2))[1]
        self.record["impersonator"] = user
        return (target, new_groups)

    def authenticate(self):
        identity = certificate_user(self.connection)
        if identity:
            return identity
        header = self.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
            if token:
                found = self.server.tokens.user_for(token)
                if found:
                    return found
        return None

    def route(self, info, query, body):
        if not info.is_resource:
            self.serve_non_resource(info)
            return
        rtype = info.rtype
        if rtype is None or info.bad_path:
            raise unknown_path()
        if info.subresource and info.subresource not in rtype.subresources:
            raise unknown_path()
        if verb_takes_body(info.verb) and not rtype.review and (
                (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                == k8s_protobuf.CONTENT_TYPE):
            # A custom resource has no protobuf codec on a real server either:
            # its answer, word for word. A built-in kind does, and this fake
            # has none (beyond the access reviews): 415 as well, saying so,
            # rather than a body misread. kubectl's typed commands (create
            # namespace, create role, ...) meet this; apply and create -f
            # send JSON.
            if rtype.group == "monitoring.coreos.com":
                raise ApiError(415, "the body of the request was in an unknown format - accepted "
                                    "media types include: application/json, application/yaml")
            raise ApiError(415, "the fake API server decodes %s only from JSON (or YAML), not "
                                "from protobuf: send application/json" % rtype.qualified())
        if rtype.review:
            if info.namespace:
                raise unknown_path()
            if info.verb != "create" or info.name:
                raise method_not_allowed()
            self.serve_review(rtype, body)
            return
        if rtype.namespaced:
            namespace = info.namespace
        else:
            if info.namespace and rtype is not NAMESPACES:
                raise unknown_path()
            namespace = ""
        dry_run = query.get("dryRun") == "All"
        cluster = self.server.cluster
        verb = info.verb
        if verb in ("list", "watch", "create", "deletecollection") and info.subresource:
            raise method_not_allowed()
        if rtype.namespaced and not namespace and verb not in ("list", "watch"):
            raise (method_not_allowed() if verb in ("create", "deletecollection") else unknown_path())
        if verb == "watch":
            self.serve_watch(rtype, namespace or None, query, getattr(info, "watch_name", ""))
        elif verb == "list":
            listing = cluster.list(rtype, namespace or None, query)
            self.send_object(rtype, listing, query, is_list=True)
        elif verb == "get":
            if info.subresource == "scale":
                self.send_body(200, cluster.get_scale(rtype, namespace, info.name))
            else:
                self.send_object(rtype, cluster.get(rtype, namespace, info.name), query)
        elif verb == "create":
            if info.name:
                raise method_not_allowed()
            self.send_body(201, cluster.create(rtype, namespace, body, dry_run))
        elif verb in ("update", "patch"):
            content_type = self.headers.get("Content-Type") if verb == "patch" else None
            if info.subresource == "scale":
                result = cluster.update_scale(rtype, namespace, info.name, body, dry_run, content_type)
            elif info.subresource == "status":
                result = cluster.update_status(rtype, namespace, info.name, body, dry_run, content_type)
            elif verb == "patch":
                result = cluster.patch(rtype, namespace, info.name, content_type, body, dry_run)
            else:
                result = cluster.update(rtype, namespace, info.name, body, dry_run)
            self.send_body(200, result)
        elif verb == "delete":
            if info.subresource:
                raise method_not_allowed()
            options = None
            if body:
                try:
                    options = json.loads(body)
                except ValueError:
                    raise bad_request("the body of the request could not be decoded as DeleteOptions")
            self.send_body(200, cluster.delete(rtype, namespace, info.name, options, dry_run))
        elif verb == "deletecollection":
            self.send_body(200, cluster.delete_collection(rtype, namespace or None, query, dry_run))
        else:
            raise method_not_allowed()

    # serve_review: a SelfSubjectAccessReview or SelfSubjectRulesReview,
    # in JSON or in protobuf (kubectl auth can-i sends protobuf), evaluated
    # for the identity the request acts as (after impersonation) by the
    # authorizer in force, and answered in the encoding the Accept header
    # prefers. Under AlwaysAllow everything is allowed, and the rules review
    # lists "*" for everything, as the real server's AlwaysAllow authorizer
    # does.
    def serve_review(self, rtype, body):
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if content_type == k8s_protobuf.CONTENT_TYPE:
                spec = review_spec_from_protobuf(rtype, body)
            elif content_type in ("application/json", ""):
                spec = review_spec_from_json(rtype, body)
            else:
                raise ApiError(415, 'the body of the request was in an unknown format - accepted media '
                                    'types include: application/json, application/yaml, '
                                    'application/vnd.kubernetes.protobuf')
        except (ValueError, k8s_protobuf.ProtobufError) as exc:
            raise bad_request("the body of the request could not be decoded as %s: %s"
                              % (rtype.kind, exc))
        user, groups = self.identity
        authorizer = self.server.authorizer
        if rtype.kind == "SelfSubjectAccessReview":
            errors = access_review_errors(spec)
            if errors:
                raise invalid(rtype.kind, rtype.group, "", errors)
            attributes = spec.get("resourceAttributes")
            if authorizer is None:
                allowed, reason = True, ""
            elif attributes is not None:
                allowed, reason = authorizer.review(user, groups, {
                    "verb": attributes.get("verb", ""), "api_group": attributes.get("group", ""),
                    "resource": attributes.get("resource", ""),
                    "subresource": attributes.get("subresource", ""),
                    "namespace": attributes.get("namespace", ""), "name": attributes.get("name", "")})
            else:
                path = spec["nonResourceAttributes"]
                allowed, reason = authorizer.review(user, groups, {"verb": path.get("verb", "")},
                                                    path.get("path", ""))
            # the real status leaves an empty reason out
            status = {"allowed": allowed, "reason": reason} if reason else {"allowed": allowed}
        else:
            if not spec.get("namespace"):
                raise bad_request("no namespace on request")
            if authorizer is None:
                resource_rules, path_rules = EVERYTHING_RULES
            else:
                resource_rules, path_rules = authorizer.rules_review(user, groups,
                                                                     spec.get("namespace", ""))
            status = {"resourceRules": resource_rules, "nonResourceRules": path_rules,
                      "incomplete": False}
            spec = {}   # the real server answers the status alone
        answer = {"kind": rtype.kind, "apiVersion": rtype.group_version,
                  "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
        if k8s_protobuf.wants_protobuf(self.headers.get("Accept", "")):
            self.send_body(201, k8s_protobuf.wrap(rtype.group_version, rtype.kind,
                                                  review_to_protobuf(rtype, spec, status)),
                           k8s_protobuf.CONTENT_TYPE)
        else:
            self.send_body(201, answer)

    def send_object(self, rtype, obj, query, is_list=False):
        """An object or list in the representation the Accept header asks for."""
        accept = self.headers.get("Accept", "")
        if not accepts_json(accept):
            raise ApiError(406, "only the following media types are accepted: application/json, "
                           "application/yaml")
        wanted = accept_params(accept)
        if wanted == "Table":
            objects = obj["items"] if is_list else [obj]
            metadata = dict(obj["metadata"]) if is_list else {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            objects = [dict(o, kind=rtype.kind, apiVersion=rtype.group_version) for o in objects]
            body = table_for(rtype, objects, metadata, query.get("includeObject", "PartialObjectMetadata"))
        elif wanted.startswith("PartialObjectMetadata"):
            if is_list:
                body = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj["metadata"],
                        "items": [list_item(partial_metadata(o)) for o in obj["items"]]}
            else:
                body = partial_metadata(obj)
        elif is_list:
            body = dict(obj, items=[list_item(o) for o in obj["items"]])
        else:
            body = obj
        self.send_body(200, body)

    def serve_non_resource(self, info):
        """/version, discovery and OpenAPI; anything else is 404."""
        if self.command != "GET":
            raise method_not_allowed() if info.path.startswith(("/api", "/version")) else unknown_path()
        path = info.path.rstrip("/") or "/"
        accept = self.headers.get("Accept", "")
        aggregated = self.server.aggregated_discovery and wants_aggregated(accept)
        if path == "/version":
            self.send_body(200, SERVER_VERSION)
        elif path == "/api":
            if aggregated:
                self.send_body(200, aggregated_list([""]), AGGREGATED_DISCOVERY_TYPE)
            else:
                self.send_body(200, {"kind": "APIVersions", "versions": ["v1"],
                                     "serverAddressByClientCIDRs": [{
                                         "clientCIDR": "0.0.0.0/0",
                                         "serverAddress": "%s:%d" % (LOOPBACK, self.server.server_address[1])}]})
        elif path == "/apis":
            if aggregated:
                self.send_body(200, aggregated_list(API_GROUPS), AGGREGATED_DISCOVERY_TYPE)
            else:
                self.send_body(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                     "groups": [group_entry(g) for g in API_GROUPS]})
        elif path == "/api/v1":
            self.send_body(200, legacy_resource_list("", "v1"))
        elif path.startswith("/apis/") and path.count("/") == 2 and info.api_group in API_GROUPS:
            self.send_body(200, dict({"kind": "APIGroup", "apiVersion": "v1"}, **group_entry(info.api_group)))
        elif path.startswith("/apis/") and (info.api_group, info.api_version) in group_versions():
            self.send_body(200, legacy_resource_list(info.api_group, info.api_version))
        elif path == "/openapi/v3":
            self.send_body(200, openapi_v3_root())
        elif path.startswith("/openapi/v3/"):
            parts = path[len("/openapi/v3/"):].split("/")
            if parts[0] == "api" and len(parts) == 2 and ("", parts[1]) in group_versions():
                self.send_body(200, openapi_v3_document("", parts[1]))
            elif parts[0] == "apis" and len(parts) == 3 and (parts[1], parts[2]) in group_versions():
                self.send_body(200, openapi_v3_document(parts[1], parts[2]))
            else:
                raise unknown_path()
        else:
            raise unknown_path()

    # -- watch --

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, event_type, obj):
        self.write_chunk((json.dumps({"type": event_type, "object": obj}, separators=(",", ":"))
                          + "\n").encode())

    def send_object_event(self, event_type, obj, table):
        """An ADDED/MODIFIED/DELETED event; for a client that asked for
        Tables, the object as a one-row Table (column definitions only in
        the first one, as the real server streams them)."""
        if table is not None:
            body = table_for(table["rtype"], [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                             table["include"])
            if table["sent_columns"]:
                body["columnDefinitions"] = None
            table["sent_columns"] = True
            obj = body
        self.send_event(event_type, obj)

    # serve_watch: a chunked stream of watch events, one JSON object per
    # line. Starts from the query's resourceVersion (410 Expired ERROR event
    # when the history no longer reaches it), filters by namespace and
    # selectors the way the real watch cache does (an object that stops
    # matching is DELETED, one that starts matching is ADDED), sends
    # bookmarks when allowed, and ends at timeoutSeconds or shutdown.
    def serve_watch(self, rtype, namespace, query, watch_name):
        cluster = self.server.cluster
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        if watch_name:
            fields.append(("metadata.name", "=", watch_name))
        timeout = self.server.watch_timeout_s
        if query.get("timeoutSeconds"):
            asked = parse_int(query["timeoutSeconds"], "timeoutSeconds")
            if asked > 0:   # 0 asks for the server's default, as on the real server
                timeout = min(asked, timeout)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        periodic_bookmarks = bookmarks and self.server.bookmark_mode != "none"
        initial, position, error = cluster.watch_start(rtype, namespace, query)
        if not accepts_json(self.headers.get("Accept", "")):
            raise ApiError(406, "only the following media types are accepted: application/json")
        table = None
        if accept_params(self.headers.get("Accept", "")) == "Table":
            table = {"rtype": rtype, "include": query.get("includeObject", "PartialObjectMetadata"),
                     "sent_columns": False}
        deadline = time.monotonic() + max(timeout, 0)
        self.send_head(200, STATUS_JSON)
        self.server.watch_opened()
        try:
            if error is not None:
                self.send_event("ERROR", error.status())
                return
            if getattr(self, "silent_watch", False):
                self.hold_silent(deadline)
                return
            for obj in initial:
                if labels_match(labels, obj["metadata"].get("labels")) and fields_match(fields, obj):
                    self.send_object_event("ADDED", obj, table)
            if query.get("sendInitialEvents") == "true" and bookmarks:
                self.send_event("BOOKMARK", self.bookmark(rtype, position, initial_end=True))
            next_bookmark = time.monotonic() + self.server.bookmark_interval_s
            while not cluster.stopping.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                until = min(deadline, next_bookmark) if periodic_bookmarks else deadline
                records, current_rv, too_old = cluster.watch_wait(position, until)
                if too_old:
                    self.send_event("ERROR", expired("too old resource version: %d (%d)"
                                                     % (position, cluster.floor_rv)).status())
                    return
                for record in records:
                    event = self.translate(rtype, namespace, labels, fields, record)
                    if event is not None:
                        self.send_object_event(event[0], event[1], table)
                    position = record.rv
                if periodic_bookmarks and time.monotonic() >= next_bookmark:
                    position = max(position, current_rv)
                    self.send_event("BOOKMARK", self.bookmark(rtype, position))
                    next_bookmark = time.monotonic() + self.server.bookmark_interval_s
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True
            finally:
                self.server.watch_closed()

    def hold_silent(self, deadline):
        """A `silent` fault: keep the watch open without a byte until its
        deadline, shutdown, or the client closing it (a client sends nothing
        on a watch connection, so anything readable means it went away)."""
        cluster = self.server.cluster
        while not cluster.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [],
                                           min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0)))
            if readable:
                self.close_connection = True
                return

    @staticmethod
    def bookmark(rtype, position, initial_end=False):
        """A bookmark as a real server sends it: an empty object of the kind
        (no name or namespace, spec and status zeroed, so a Deployment's
        spec.replicas reads 0) carrying only the resourceVersion (and the
        initial-events-end annotation after sendInitialEvents)."""
        metadata = {"resourceVersion": str(position), "creationTimestamp": None}
        if initial_end:
            metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": rtype.kind, "apiVersion": rtype.group_version, "metadata": metadata}
        if rtype.kind == "Deployment":
            obj["spec"] = {"replicas": 0, "selector": None,
                           "template": {"metadata": {"creationTimestamp": None},
                                        "spec": {"containers": None}},
                           "strategy": {}}
            obj["status"] = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0}
        return obj

    @staticmethod
    def translate(rtype, namespace, labels, fields, record):
        """(type, object) a watcher of `rtype` sees for one change, or None."""
        if record.storage != rtype.storage or (namespace is not None and record.namespace != namespace):
            return None

        def passes(obj):
            return (obj is not None and labels_match(labels, obj["metadata"].get("labels"))
                    and fields_match(fields, obj))
        new = to_api(rtype, record.obj) if record.obj is not None else None
        old = to_api(rtype, record.old) if record.old is not None else None
        new_passes = record.type != "DELETED" and passes(new)
        old_passes = passes(old)
        if new_passes and (old_passes or record.type == "ADDED"):
            return (record.type if record.type == "ADDED" else "MODIFIED"), new
        if new_passes:
            return "ADDED", new
        if old_passes:
            gone = json.loads(json.dumps(old))
            gone["metadata"]["resourceVersion"] = str(record.rv)
            return "DELETED", gone
        return None


class TlsApiServer(ThreadingHTTPServer):
    """The API port: a threading HTTP server whose connections are wrapped
    in TLS inside their own thread (a slow handshake never blocks accept)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, tls_context, cluster, tokens, faults, request_log,
                 aggregated_discovery, watch_timeout_s, bookmark_interval_s):
        self.tls_context = tls_context
        self.cluster = cluster
        self.tokens = tokens
        self.faults = faults
        self.request_log = request_log
        self.aggregated_discovery = aggregated_discovery
        self.watch_timeout_s = watch_timeout_s
        self.bookmark_interval_s = bookmark_interval_s
        self.bookmark_mode = "real"
        self.authorizer = None      # --authorization-mode RBAC: an RbacAuthorizer
        self.open_watches = 0
        self.watches_changed = threading.Condition()
        super().__init__(address, ApiHandler)

    def watch_opened(self):
        with self.watches_changed:
            self.open_watches += 1

    def watch_closed(self):
        with self.watches_changed:
            self.open_watches -= 1
            self.watches_changed.notify_all()

    def drain_watches(self, timeout_s):
        """Wait (bounded) until every open watch has sent its last chunk."""
        deadline = time.monotonic() + timeout_s
        with self.watches_changed:
            while self.open_watches > 0 and time.monotonic() < deadline:
                self.watches_changed.wait(deadline - time.monotonic())

    def finish_request(self, request, client_address):
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
            connection = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                connection.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass


# ------------------------------------------------------------------ control port

class ControlHandler(BaseHTTPRequestHandler):
    """The plain-HTTP control port: seed and read objects, faults, the
    request log, compaction. No authentication; loopback only."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT_S

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def reply(self, code, body):
        data = (json.dumps(body, separators=(",", ":")) + "\n").encode()
        self.send_response_only(code)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def json_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise bad_request("body is not JSON: %s" % exc)

    def watch_settings(self, body):
        """Change how watches behave from now on: `bookmarks` (real or none)
        and `bookmark_interval_s`. Returns the settings in force."""
        api = self.server.api
        unknown = sorted(set(body) - {"bookmarks", "bookmark_interval_s"})
        if unknown:
            raise bad_request("unknown watch settings: %s" % ", ".join(unknown))
        if "bookmarks" in body:
            if body["bookmarks"] not in BOOKMARK_MODES:
                raise bad_request("bookmarks must be one of %s" % ", ".join(BOOKMARK_MODES))
            api.bookmark_mode = body["bookmarks"]
        if "bookmark_interval_s" in body:
            interval = body["bookmark_interval_s"]
            if not isinstance(interval, (int, float)) or interval <= 0:
                raise bad_request("bookmark_interval_s must be a positive number")
            api.bookmark_interval_s = float(interval)
        return {"bookmarks": api.bookmark_mode, "bookmark_interval_s": api.bookmark_interval_s}

    def dispatch(self):
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        route = (self.command, split.path.rstrip("/"))
        server = self.server
        try:
            body = self.json_body() if self.command == "POST" else None
            if self.command != "POST" and int(self.headers.get("Content-Length") or 0):
                self.rfile.read(int(self.headers["Content-Length"]))
            if route == ("GET", "/healthz"):
                self.reply(200, {"status": "ok"})
            elif route == ("GET", "/state"):
                self.reply(200, server.cluster.state())
            elif route == ("GET", "/faults"):
                self.reply(200, server.faults.list())
            elif route == ("POST", "/faults"):
                rules = body if isinstance(body, list) else [body]
                added = [server.faults.add(rule) for rule in rules]
                self.reply(200, added if isinstance(body, list) else added[0])
            elif route == ("DELETE", "/faults"):
                self.reply(200, {"removed": server.faults.clear()})
            elif self.command == "DELETE" and split.path.startswith("/faults/"):
                self.reply(200, {"removed": server.faults.clear(parse_int(split.path[8:], "id"))})
            elif route == ("GET", "/log"):
                self.reply(200, server.request_log.since(parse_int(query.get("since", "0"), "since")))
            elif route == ("POST", "/log/reset"):
                self.reply(200, {"removed": server.request_log.reset()})
            elif route == ("POST", "/objects"):
                items = body if isinstance(body, list) else (
                    body.get("items") if isinstance(body, dict) and body.get("kind") == "List" else [body])
                stored = [server.cluster.seed(item) for item in items]
                self.reply(201, stored if len(stored) != 1 or isinstance(body, list) else stored[0])
            elif route == ("GET", "/objects"):
                self.reply(200, server.cluster.read_path(query.get("path", "")))
            elif route == ("DELETE", "/objects"):
                self.reply(200, server.cluster.remove_path(query.get("path", "")))
            elif route == ("POST", "/compact"):
                self.reply(200, server.cluster.compact())
            elif route == ("POST", "/watch-settings"):
                self.reply(200, self.watch_settings(body or {}))
            else:
                self.reply(404, unknown_path().status())
        except ApiError as error:
            self.reply(error.code, error.status())
        except Exception as exc:
            traceback.print_exc()
            self.reply(500, ApiError(500, "control: %s" % exc).status())


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, cluster, faults, request_log):
        self.cluster = cluster
        self.faults = faults
        self.request_log = request_log
        super().__init__(address, ControlHandler)


# ------------------------------------------------------------------ main

def write_port_file(path, port):
    """Write the port atomically, so a reader never sees a partial number."""
    temporary = "%s.tmp.%d" % (path, os.getpid())
    with open(temporary, "w") as handle:
        handle.write("%d\n" % port)
    os.replace(temporary, path)


def tls_context(cert, key, client_ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(cafile=client_ca)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def parse_args(argv):
    parser = argparse.ArgumentParser(description="A fake kube-apiserver for integration tests.")
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    parser.add_argument("--client-ca", required=True, help="CA that signs accepted client certificates")
    parser.add_argument("--tokens", required=True, help="file of `TOKEN USER [GROUPS]` lines")
    parser.add_argument("--port-file", required=True, help="where to write the HTTPS API port")
    parser.add_argument("--control-port-file", required=True, help="where to write the control port")
    parser.add_argument("--log", required=True, help="request log (JSON lines, appended)")
    parser.add_argument("--manual-status", action="store_true",
                        help="Deployment status changes only through PATCH .../status")
    parser.add_argument("--status-after-scale", action="store_true",
                        help="rewrite a Deployment's status %g s after each scale, as the "
                             "deployment controller does (a new resourceVersion)"
                             % STATUS_AFTER_SCALE_S)
    parser.add_argument("--legacy-discovery", action="store_true",
                        help="never answer aggregated discovery")
    parser.add_argument("--history-limit", type=int, default=HISTORY_LIMIT,
                        help="watch events kept (default %(default)s)")
    parser.add_argument("--watch-timeout", type=float, default=DEFAULT_WATCH_TIMEOUT_S,
                        help="longest watch in seconds (default %(default)s)")
    parser.add_argument("--bookmark-interval", type=float, default=BOOKMARK_INTERVAL_S,
                        help="seconds between watch bookmarks (default %(default)s)")
    parser.add_argument("--bookmarks", choices=BOOKMARK_MODES, default="real",
                        help="real-shaped periodic bookmarks, or none (a v1.24 server's quiet watch)")
    parser.add_argument("--authorization-mode", choices=("AlwaysAllow", "RBAC"), default="AlwaysAllow",
                        help="AlwaysAllow (default), or RBAC: authorize every request against the "
                             "stored Roles, ClusterRoles and bindings (system:masters may do anything)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when the process that started this one goes away")
    args = parser.parse_args(argv)
    if args.history_limit < 1 or args.watch_timeout <= 0 or args.bookmark_interval <= 0:
        parser.error("--history-limit, --watch-timeout and --bookmark-interval must be positive")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        context = tls_context(args.cert, args.key, args.client_ca)
    except (OSError, ssl.SSLError) as exc:
        print("kube_apiserver: TLS setup: %s" % exc, file=sys.stderr)
        return 2
    cluster = Cluster(manual_status=args.manual_status, history_limit=args.history_limit,
                      status_after_scale=args.status_after_scale)
    faults = FaultBook()
    request_log = RequestLog(args.log)
    api = TlsApiServer((LOOPBACK, 0), context, cluster, TokenBook(args.tokens), faults, request_log,
                       not args.legacy_discovery, args.watch_timeout, args.bookmark_interval)
    api.bookmark_mode = args.bookmarks
    if args.authorization_mode == "RBAC":
        api.authorizer = RbacAuthorizer(cluster)
    control = ControlServer((LOOPBACK, 0), cluster, faults, request_log)
    control.api = api
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S},
                                daemon=True) for s in (api, control)]
    for thread in threads:
        thread.start()
    write_port_file(args.port_file, api.server_address[1])
    write_port_file(args.control_port_file, control.server_address[1])
    parent = os.getppid()
    while not stop.wait(POLL_INTERVAL_S):
        if args.exit_with_parent and os.getppid() != parent:
            break   # orphaned: the test that started us is gone
    cluster.stop()
    api.drain_watches(WATCH_DRAIN_S)
    for server in (api, control):
        server.shutdown()
        server.server_close()
    request_log.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Handler threads are daemons parked in reads; leave without joining them.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
