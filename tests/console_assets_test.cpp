// The console's files as compiled into the binary (console/CMakeLists.txt): every asset the
// page loads is there, byte for byte what is on disk, with a text content type; "/" is the page.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "server/console_assets.h"

namespace {

using govmesh::server::findConsoleAsset;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path << " (run from the project root)");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

TEST_CASE("console assets: every file the page loads is embedded, byte for byte") {
  const std::pair<const char*, const char*> files[] = {
      {"/index.html", "console/index.html"},
      {"/assets/app.js", "console/app.js"},
      {"/assets/proof.js", "console/proof.js"},
      {"/assets/dom.js", "console/dom.js"},
      {"/assets/app.css", "console/app.css"},
      {"/assets/vendor/uPlot.iife.min.js", "console/node_modules/uplot/dist/uPlot.iife.min.js"},
      {"/assets/vendor/uPlot.min.css", "console/node_modules/uplot/dist/uPlot.min.css"},
  };
  for (const auto& [url, file] : files) {
    CAPTURE(url);
    const auto* asset = findConsoleAsset(url);
    REQUIRE(asset != nullptr);
    CHECK(asset->path == url);
    CHECK(asset->body == readFile(file));
    CHECK(asset->contentType.find("; charset=utf-8") != std::string_view::npos);
  }
  CHECK(findConsoleAsset("/assets/app.js")->contentType.starts_with("text/javascript"));
  CHECK(findConsoleAsset("/assets/app.css")->contentType.starts_with("text/css"));
}

TEST_CASE("console assets: / is the page; unknown paths are not found") {
  const auto* root = findConsoleAsset("/");
  REQUIRE(root != nullptr);
  CHECK(root == findConsoleAsset("/index.html"));
  CHECK(root->contentType.starts_with("text/html"));
  CHECK(root->body.starts_with("<!doctype html>"));
  CHECK(findConsoleAsset("") == nullptr);
  CHECK(findConsoleAsset("/nope") == nullptr);
  CHECK(findConsoleAsset("/assets/") == nullptr);
  CHECK(findConsoleAsset("/assets/app.js?x=1") == nullptr);  // the server strips queries first
  CHECK(findConsoleAsset("/../console/app.js") == nullptr);
}

TEST_CASE("console assets: the page only loads what is embedded (no CDN)") {
  const std::string_view page = findConsoleAsset("/")->body;
  for (std::string_view ref : {"/assets/vendor/uPlot.iife.min.js", "/assets/vendor/uPlot.min.css",
                               "/assets/app.js", "/assets/app.css"}) {
    CAPTURE(ref);
    CHECK(page.find(ref) != std::string_view::npos);
    CHECK(findConsoleAsset(ref) != nullptr);
  }
  CHECK(page.find("http://") == std::string_view::npos);
  CHECK(page.find("https://") == std::string_view::npos);
}
