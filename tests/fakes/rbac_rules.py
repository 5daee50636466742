"""What cpscale's RBAC grants, as data (standard library only).

The rendered manifests (parsed into a list of dicts) go in; a set of grants
comes out, one per (apiGroup, resource, verb, resourceName) a rule allows,
with the namespace the grant reaches. `granted()` then answers whether one
API request, as the integration tests log it, would be authorized.

    grants = rules_from_objects(objects, service_account=("cpscale", "cpscale"))
    as_tuples(grants)   # {("apps", "deployments/scale", "patch", "*"), ...}
    granted(grants, {"verb": "patch", "api_group": "apps",
                     "resource": "deployments", "subresource": "scale",
                     "namespace": "shop", "name": "checkout-api"})   # True

The fake API server (kube_apiserver.py --authorization-mode RBAC) uses the
same functions as its authorizer, on the RBAC objects it stores, for the user
and groups a request authenticated as (`rules_for_user`).

The matching follows the Kubernetes RBAC authorizer
(pkg/apis/rbac/v1/evaluation_helpers.go): "*" matches any verb, group or
resource; "*/scale" matches any resource's scale subresource; a rule with
resourceNames only matches requests that name one of them: never a create
(whose request has no name), and a list or a watch only when its
fieldSelector requires exactly one metadata.name (the fake apiserver passes
that as the request's name, as the real RequestInfo does).
"""

from collections import namedtuple

ANY = "*"

# One thing a rule allows. The first four fields are the
# (apiGroup, resource, verb, resourceName-or-*) tuple; `namespace` is where it
# applies: "*" for a ClusterRole bound cluster-wide, else one namespace.
Grant = namedtuple("Grant", "api_group resource verb resource_name namespace")

# HTTP methods to Kubernetes verbs, for logs that record the method.
# A GET is `get` when the request names an object and `list` otherwise; a
# watch can only be recognised by its query, so such logs should say "watch".
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}


# A resourceName that is literally "*": it names the object called "*" (the
# real ResourceNameMatches compares literally), unlike ANY, which stands for
# a rule without resourceNames.
LITERAL_STAR = "\x00*"


def _expand(rules, namespace):
    """The grants of `rules` (a role's rules) reaching `namespace`."""
    out = set()
    for rule in rules or []:
        names = [LITERAL_STAR if n == ANY else n for n in rule.get("resourceNames") or []] or [ANY]
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    for name in names:
                        out.add(Grant(group, resource, verb, name, namespace))
    return out


SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def service_account_user(namespace, name):
    """The user name and groups a service account's token authenticates as."""
    return ("%s%s:%s" % (SERVICE_ACCOUNT_PREFIX, namespace, name),
            ["system:serviceaccounts", "system:serviceaccounts:" + namespace,
             "system:authenticated"])


def _subject_matches(subject, binding_namespace, user, groups):
    """Whether one subject of a binding is this user: a User by name, a Group
    the user is in, or a ServiceAccount (its namespace defaults to the
    binding's) whose user name is system:serviceaccount:NAMESPACE:NAME."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user == "%s%s:%s" % (SERVICE_ACCOUNT_PREFIX, namespace, name)
    return False


def _binds(binding, user, groups):
    """Whether any subject of `binding` is `user` (in `groups`)."""
    namespace = binding.get("metadata", {}).get("namespace")
    return any(_subject_matches(s, namespace, user, groups)
               for s in binding.get("subjects") or [] if isinstance(s, dict))


def _roles(objects):
    """{(namespace, name): rules} of the Roles and {name: rules} of the
    ClusterRoles among `objects`."""
    roles, cluster_roles = {}, {}
    for obj in objects:
        kind, meta = obj.get("kind"), obj.get("metadata", {})
        if kind == "Role":
            roles[(meta.get("namespace"), meta.get("name"))] = obj.get("rules")
        elif kind == "ClusterRole":
            cluster_roles[meta.get("name")] = obj.get("rules")
    return roles, cluster_roles


def rules_for_user(objects, user, groups):
    """The grants `objects` (Roles, ClusterRoles and their bindings) give
    the user `user` in `groups`, through RoleBindings (a ClusterRole bound by
    a RoleBinding reaches only that binding's namespace) and
    ClusterRoleBindings. A binding whose role does not exist grants nothing,
    as in Kubernetes."""
    roles, cluster_roles = _roles(objects)
    grants = set()
    for obj in objects:
        kind = obj.get("kind")
        if kind not in ("RoleBinding", "ClusterRoleBinding") or not _binds(obj, user, groups):
            continue
        ref = obj.get("roleRef", {})
        namespace = obj["metadata"].get("namespace") if kind == "RoleBinding" else ANY
        if ref.get("kind") == "ClusterRole":
            grants |= _expand(cluster_roles.get(ref.get("name")), namespace)
        elif ref.get("kind") == "Role" and kind == "RoleBinding":
            grants |= _expand(roles.get((namespace, ref.get("name"))), namespace)
    return grants


def rules_from_objects(objects, service_account=None):
    """The grants of the Roles and ClusterRoles among `objects`.

    With service_account=(namespace, name), only what is bound to that
    service account counts (`rules_for_user` for its token's user and
    groups). With None, every role counts, as if bound: a Role in its own
    namespace, a ClusterRole everywhere.
    """
    if service_account is not None:
        return rules_for_user(objects, *service_account_user(*service_account))
    roles, cluster_roles = _roles(objects)
    grants = set()
    for (namespace, _), rules in roles.items():
        grants |= _expand(rules, namespace)
    for rules in cluster_roles.values():
        grants |= _expand(rules, ANY)
    return grants


def with_binding_in(objects, binding_name, namespaces):
    """`objects` plus a copy of the RoleBinding `binding_name` (the first one
    found) in each of `namespaces` that has none of that name: what an
    overlay does for each namespace its config's targets live in."""
    template = next((o for o in objects if o.get("kind") == "RoleBinding"
                     and o.get("metadata", {}).get("name") == binding_name), None)
    if template is None:
        raise ValueError("no RoleBinding %r to copy" % binding_name)
    have = {o["metadata"].get("namespace") for o in objects if o.get("kind") == "RoleBinding"
            and o["metadata"].get("name") == binding_name}
    copies = [dict(template, metadata=dict(template["metadata"], namespace=ns))
              for ns in sorted(set(namespaces) - have)]
    return list(objects) + copies


def as_tuples(grants):
    """The (apiGroup, resource, verb, resourceName-or-*) set, scope dropped."""
    return {tuple(g)[:4] for g in grants}


def request_verb(record):
    """The Kubernetes verb of a request record (an HTTP method is mapped)."""
    verb = record.get("verb", "")
    if verb == "GET":
        return "get" if record.get("name") else "list"
    return _METHOD_VERBS.get(verb, verb)


def _resource_matches(rule_resource, resource, subresource):
    combined = resource + "/" + subresource if subresource else resource
    if rule_resource in (ANY, combined):
        return True
    return bool(subresource) and rule_resource == "*/" + subresource


def granted(rules, record):
    """Whether `rules` (grants, or bare 4-tuples: then any namespace) allow the
    request `record` = {"verb", "api_group", "resource", "subresource",
    "namespace", "name"} (subresource and name may be empty or absent; the
    core group is "")."""
    verb = request_verb(record)
    group = record.get("api_group") or ""
    resource = record.get("resource") or ""
    subresource = record.get("subresource") or ""
    namespace = record.get("namespace") or ""
    name = record.get("name") or ""
    for rule in rules:
        g_group, g_resource, g_verb, g_name = tuple(rule)[:4]
        g_namespace = rule[4] if len(rule) > 4 else ANY
        if g_verb not in (ANY, verb) or g_group not in (ANY, group):
            continue
        if not _resource_matches(g_resource, resource, subresource):
            continue
        if g_name != ANY and (g_name if g_name != LITERAL_STAR else ANY) != name:
            continue
        if g_namespace != ANY and g_namespace != namespace:
            continue
        return True
    return False
