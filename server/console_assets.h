// The governance console's static files (console/index.html, app.js, app.css and the uPlot
// chart library from console/node_modules), compiled into the binary by console/CMakeLists.txt
// so that a node serves its console offline, from one file, with nothing to install beside it.
#pragma once

#include <string>
#include <string_view>

namespace govmesh::server {

/// One embedded file: the URL path it is served at, its Content-Type, and its bytes.
struct ConsoleAsset { std::string_view path, contentType, body; };

/// The asset served at `path` ("/" is index.html too); nullptr when there is none.
const ConsoleAsset* findConsoleAsset(std::string_view path);

}  // namespace govmesh::server
