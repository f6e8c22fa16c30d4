# The operating model's one-command operations. Hand-written (not generated).
#   just deploy env=dev service=all     dispatch the deploy workflow (Argo CD sync + smoke test)
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

# Dispatch .github/workflows/deploy.yml for an environment and a service (or all).
deploy env service="all":
    gh workflow run deploy.yml --ref {{ quote(ref) }} -f {{ quote("env=" + trim_start_match(env, "env=")) }} -f {{ quote("service=" + trim_start_match(service, "service=")) }}

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
