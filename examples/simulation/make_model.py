"""Write examples/simulation/enterprise_model.yml: the example enterprise for attackprevLang.

Twelve users, each with a workstation; a web server exposing a web application and a VPN to the
Internet; a file server, a database server and a domain controller on one network. A domain
administrator's credentials are cached on three workstations and on the web server; each user's
password is valid on their workstation, the file server and the VPN; the web application's
service account is valid on the database server.

Run from the repository root: ``.venv/bin/python examples/simulation/make_model.py``.
"""

from pathlib import Path

from maltoolbox.language import LanguageGraph
from maltoolbox.model import Model

HERE = Path(__file__).resolve().parent
USERS = 12
ADMIN_WORKSTATIONS = (0, 5, 9)  # where a domain administrator has logged on

if __name__ == "__main__":
    lang = LanguageGraph.from_mal_spec(str(HERE / "attackprevlang.mal"))
    model = Model("attackprev example enterprise", lang)
    add = model.add_asset
    internet = add("Internet", "internet")
    lan = add("Network", "corp-lan")
    web, files, db = add("Server", "web-server"), add("Server", "file-server"), add("Server", "db-server")
    dc = add("DomainController", "dc")
    web_app, vpn = add("Service", "web-app"), add("Service", "vpn")
    admin, service_account = add("Credentials", "domain-admin"), add("Credentials", "web-app-account")
    internet.add_associated_assets("exposedServices", {web_app, vpn})
    web_app.add_associated_assets("host", {web})
    vpn.add_associated_assets("host", {web})
    web.add_associated_assets("storedCredentials", {service_account, admin})
    service_account.add_associated_assets("validOn", {db})
    hosts = {web, files, db, dc}
    for i in range(USERS):
        user, ws = add("User", f"user-{i:02d}"), add("Workstation", f"ws-{i:02d}")
        password = add("Credentials", f"password-{i:02d}")
        internet.add_associated_assets("users", {user})
        user.add_associated_assets("workstations", {ws})
        ws.add_associated_assets("storedCredentials", {password} | ({admin} if i in ADMIN_WORKSTATIONS else set()))
        password.add_associated_assets("validOn", {ws, files})
        password.add_associated_assets("validForServices", {vpn})
        hosts.add(ws)
    admin.add_associated_assets("validOn", hosts)
    lan.add_associated_assets("hosts", hosts)
    model.save_to_file(str(HERE / "enterprise_model.yml"))
