# The operating model's one-command operations. Hand-written (not generated).
#   just deploy env=dev service=all     build if needed -> test -> promote -> sync -> smoke (see the recipe)
#   just infra env=dev plan             terraform plan over that environment's rendered roots
#   just infra env=dev apply            ... and apply them, shared first, then pools, then tenants
#   just render | just check | just test
# Arguments may be written `env=dev` or just `dev`.

companyos := ".venv/bin/companyos"
# The branch the deploy workflow runs from (catalog/platform.yaml repository.revision).
ref := "main"

# List the recipes.
default:
    @just --list

# The release chain for an environment and a service (or all): build if needed -> test ->
# promote -> sync -> smoke. Builds and promotions end in a pull request (the catalog records
# digests); once it is merged, run the same command again to sync and smoke-test.
deploy env service="all":
    #!/usr/bin/env bash
    set -euo pipefail
    env={{ quote(trim_start_match(env, "env=")) }}
    service={{ quote(trim_start_match(service, "service=")) }}
    ref={{ quote(ref) }}
    py=.venv/bin/python
    release() { "$py" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print(((d.get(sys.argv[3]) or {}) if sys.argv[3] == "build" else d["image"].get("releases", {}).get(sys.argv[2], {})).get(sys.argv[4], ""))' "catalog/services/$1.yaml" "$env" "$2" "$3"; }
    first=$("$py" -c 'import glob, yaml; print(next(d["name"] for d in map(lambda p: yaml.safe_load(open(p)), sorted(glob.glob("environments/*.yaml"))) if d["promotion"]["after"] is None))')
    if [ "$service" = all ]; then services=$(grep -l '^build:' catalog/services/*.yaml | xargs -n1 basename | sed 's/\.yaml$//'); else services=$service; fi
    pending=0
    for svc in $services; do
      if [ "$env" = "$first" ]; then
        # 1. build if needed: the newest commit of the service's source is not what dev runs.
        context=$(release "$svc" build context)
        if [ -z "$context" ]; then echo "$svc has no build: in catalog/services/$svc.yaml; it cannot be built" >&2; exit 2; fi
        head=$(git log -1 --format=%H -- "$context")
        if [ "$(release "$svc" image tag)" != "$head" ]; then
          echo "== build $svc at $head (release-$svc.yml: lint, test, scan, build, sign; opens the $env pull request)"
          gh workflow run "release-$svc.yml" --ref "$ref"
          pending=1
        fi
      else
        # 3. promote: copy the previous environment's digest (gate, copy, pull request).
        if ! {{ companyos }} promote "$svc" --to "$env" --dry-run --format json | grep -q '"unchanged": true'; then
          echo "== promote $svc to $env (promote.yml: smoke and SLO gate, signed copy, pull request)"
          gh workflow run promote.yml --ref "$ref" -f "service=$svc" -f "to=$env"
          pending=1
        fi
      fi
    done
    if [ "$pending" = 1 ]; then echo "merge the pull requests the workflows open, then run: just deploy env=$env service=$service"; exit 0; fi
    # 2. test: the catalog and the committed render agree (CI ran the services' tests before the digest was recorded).
    {{ companyos }} check
    # 4 and 5. sync and smoke-test (.github/workflows/deploy.yml).
    echo "== sync and smoke-test $service in $env"
    gh workflow run deploy.yml --ref "$ref" -f "env=$env" -f "service=$service"

# Run terraform plan or apply over every rendered root of an environment, locally.
infra env action="plan":
    #!/usr/bin/env bash
    set -euo pipefail
    env={{ quote(trim_start_match(env, "env=")) }}
    action={{ quote(action) }}
    case "$action" in
      plan|apply) ;;
      *) echo "usage: just infra env=<env> plan|apply" >&2; exit 2 ;;
    esac
    roots=$({{ companyos }} roots --env "$env" | awk '{print $1}')
    if [ -z "$roots" ]; then echo "no Terraform roots rendered for '$env'" >&2; exit 2; fi
    for root in $roots; do
      echo "== $action $root"
      terraform -chdir="$root" init -input=false
      if [ "$action" = apply ]; then
        terraform -chdir="$root" apply -input=false
      else
        terraform -chdir="$root" plan -input=false
      fi
    done

# Render the catalog into rendered/ and .github/workflows/.
render:
    make render

# Fail (with the diff) when the committed output differs from the catalog.
check:
    make check

# Run the test suite.
test:
    make test
