"""The login page: a token goes in once, a session cookie comes back (service/routes/session.py).

No script on it; every value it shows is escaped."""

from __future__ import annotations

import html


def build_login_page(next_path: str, csrf: str, error: str | None = None) -> str:
    """The login form; ``csrf`` is the form's token, checked against its cookie."""
    message = f'<p style="color:#b10026">{html.escape(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>riskmap 登录</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"></head>
<body style="font:15px/1.6 sans-serif;max-width:420px;margin:12vh auto;padding:0 16px">
<h1 style="font-size:20px">特种设备区域风险地图 · 登录</h1>
<p>请输入管理员分配的访问令牌（<code>riskmap users add</code> 生成）。</p>{message}
<form method="post" action="/login">
<input type="hidden" name="next" value="{html.escape(next_path, quote=True)}">
<input type="hidden" name="csrf" value="{html.escape(csrf, quote=True)}">
<label>访问令牌<br><input name="token" type="password" autocomplete="off" required
 minlength="8" style="width:100%;padding:6px"></label>
<p><button type="submit" style="padding:6px 18px">登录</button></p>
</form></body></html>"""
