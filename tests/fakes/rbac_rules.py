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
that as the request's name, as the real RequestInfo does). A rule's
nonResourceURLs grant paths (`granted_path`), and only through a
ClusterRoleBinding: a request for a path has no namespace, so a RoleBinding
never reaches it. "/x/*" matches every path under "/x/", "*" every path.
"""

from collections import namedtuple

ANY = "*"

# One thing a rule allows. The first four fields are the
# (apiGroup, resource, verb, resourceName-or-*) tuple; `namespace` is where it
# applies: "*" for a ClusterRole bound cluster-wide, else one namespace.
Grant = namedtuple("Grant", "api_group resource verb resource_name namespace")
# One non-resource URL (or "/prefix/*") a rule allows a verb on.
NonResourceGrant = namedtuple("NonResourceGrant", "url verb")

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
    """The grants of `rules` (a role's rules) reaching `namespace`; their
    non-resource URLs only cluster-wide (namespace ANY)."""
    out = set()
    for rule in rules or []:
        if namespace == ANY:
            for url in rule.get("nonResourceURLs") or []:
                for verb in rule.get("verbs") or []:
                    out.add(NonResourceGrant(url, verb))
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


def _first_subject(binding, user, groups):
    """The first subject of `binding` that is `user` (in `groups`), or None:
    the one the RBAC authorizer's reason names."""
    namespace = binding.get("metadata", {}).get("namespace")
    return next((s for s in binding.get("subjects") or [] if isinstance(s, dict)
                 and _subject_matches(s, namespace, user, groups)), None)


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


def _bindings_for(objects, user, groups):
    """(binding, subject, namespace or ANY, rules) of each binding among
    `objects` that binds `user` in `groups`, in their order, with the first
    subject that is the user: a ClusterRole's rules reach everywhere
    through a ClusterRoleBinding and only the binding's namespace through a
    RoleBinding; a Role's, its own namespace. A binding whose role does not
    exist yields nothing, as in Kubernetes."""
    roles, cluster_roles = _roles(objects)
    for obj in objects:
        kind = obj.get("kind")
        if kind not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subject = _first_subject(obj, user, groups)
        if subject is None:
            continue
        ref = obj.get("roleRef", {})
        namespace = obj["metadata"].get("namespace") if kind == "RoleBinding" else ANY
        if ref.get("kind") == "ClusterRole" and ref.get("name") in cluster_roles:
            yield obj, subject, namespace, cluster_roles[ref.get("name")]
        elif ref.get("kind") == "Role" and kind == "RoleBinding" and \
                (namespace, ref.get("name")) in roles:
            yield obj, subject, namespace, roles[(namespace, ref.get("name"))]


def _bound_rules(objects, user, groups):
    """(namespace or ANY, rules) of each binding that binds `user` in
    `groups` (_bindings_for)."""
    for _, _, namespace, rules in _bindings_for(objects, user, groups):
        yield namespace, rules


def _describe_subject(subject, binding_namespace):
    """A subject as the RBAC authorizer's reason names it: Kind "name", a
    service account as "name/namespace" (its namespace defaulting to the
    binding's)."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return '%s "%s/%s"' % (kind, name, subject.get("namespace") or binding_namespace)
    return '%s "%s"' % (kind, name)


def allowed_by(objects, user, groups, record=None, path=None, literal_verb=False):
    """Why the RBAC authorizer allows a request, as the reason it gives:
    'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User
    "u"' (a RoleBinding as "b/namespace"), naming the first binding, and its
    first subject that is this user, whose role has a rule that allows it:
    ClusterRoleBindings first, then the RoleBindings of the request's
    namespace, each in the order of `objects`. None where nothing allows it.
    `record` is a resource request (granted's shape); `path`, with the verb
    in record["verb"], a non-resource one, which only ClusterRoleBindings
    reach."""
    namespace = "" if path is not None else (record.get("namespace") or "")
    bound = list(_bindings_for(objects, user, groups))
    reaching = [b for b in bound if b[2] == ANY] + [b for b in bound if namespace and b[2] == namespace]
    for binding, subject, reach, rules in reaching:
        grants = _expand(rules, reach)
        allows = (granted_path(grants, record.get("verb", ""), path) if path is not None
                  else granted(grants, record, literal_verb))
        if allows:
            name, ref = binding["metadata"].get("name"), binding.get("roleRef", {})
            binding_namespace = "" if reach == ANY else reach
            if binding_namespace:
                name += "/" + binding_namespace
            return 'RBAC: allowed by %s "%s" of %s "%s" to %s' % (
                binding.get("kind"), name, ref.get("kind"), ref.get("name"),
                _describe_subject(subject, binding_namespace))
    return None


def cluster_wide_grants(rules):
    """The grants of `rules` bound cluster-wide (a ClusterRoleBinding's)."""
    return _expand(rules, ANY)


def rules_for_user(objects, user, groups):
    """The grants `objects` (Roles, ClusterRoles and their bindings) give
    the user `user` in `groups` (_bound_rules)."""
    grants = set()
    for namespace, rules in _bound_rules(objects, user, groups):
        grants |= _expand(rules, namespace)
    return grants


def rules_in_namespace(objects, user, groups, namespace, extra_rules=()):
    """What a SelfSubjectRulesReview answers: (resource rules, non-resource
    rules) that reach `namespace` for `user` in `groups`, each as the role
    wrote it ({verbs, apiGroups, resources, resourceNames} or {verbs,
    nonResourceURLs}), in binding order; `extra_rules` are bound cluster-wide
    (the bootstrap roles). As the real server's rule resolver does, it lists
    the non-resource rules of a role bound by a RoleBinding too, though they
    never authorize anything (granted_path)."""
    resource_rules, path_rules = [], []
    bound = [(ANY, extra_rules)] + list(_bound_rules(objects, user, groups))
    for reach, rules in bound:
        if reach not in (ANY, namespace):
            continue
        for rule in rules or []:
            if rule.get("resources"):
                entry = {"verbs": list(rule.get("verbs") or []),
                         "apiGroups": list(rule.get("apiGroups") or []),
                         "resources": list(rule["resources"])}
                if rule.get("resourceNames"):
                    entry["resourceNames"] = list(rule["resourceNames"])
                resource_rules.append(entry)
            if rule.get("nonResourceURLs"):
                path_rules.append({"verbs": list(rule.get("verbs") or []),
                                   "nonResourceURLs": list(rule["nonResourceURLs"])})
    return resource_rules, path_rules


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
    return {tuple(g)[:4] for g in grants if not isinstance(g, NonResourceGrant)}


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


def granted(rules, record, literal_verb=False):
    """Whether `rules` (grants, or bare 4-tuples: then any namespace) allow the
    request `record` = {"verb", "api_group", "resource", "subresource",
    "namespace", "name"} (subresource and name may be empty or absent; the
    core group is ""). An HTTP method in "verb" is mapped to its verb
    (request_verb) unless `literal_verb`: an access review's verb is
    compared as written, as the real authorizer does."""
    verb = record.get("verb", "") if literal_verb else request_verb(record)
    group = record.get("api_group") or ""
    resource = record.get("resource") or ""
    subresource = record.get("subresource") or ""
    namespace = record.get("namespace") or ""
    name = record.get("name") or ""
    for rule in rules:
        if isinstance(rule, NonResourceGrant):
            continue
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


def granted_path(grants, verb, path):
    """Whether `grants` allow `verb` (a lower-case HTTP method: get, post,
    ...) on the non-resource `path`."""
    for grant in grants:
        if not isinstance(grant, NonResourceGrant) or grant.verb not in (ANY, verb):
            continue
        url = grant.url
        if url == ANY or url == path or (url.endswith("*") and path.startswith(url.rstrip("*"))):
            return True
    return False
