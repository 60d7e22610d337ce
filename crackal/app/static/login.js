"use strict";
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await crackal.api("/api/login", { method: "POST", json: {
      name: document.getElementById("name").value, password: document.getElementById("password").value } });
    const next = new URLSearchParams(location.search).get("next") || "/queue";
    location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/queue";  // only pages of this site
  } catch (error) {
    crackal.message(error.message, "error");
  }
});
