//! Project templates, embedded so a sandbox (or an empty workspace) can be seeded without a
//! network fetch. `react-vite`: React 19, Vite 8 with `@vitejs/plugin-react` 6, Tailwind CSS 3
//! through PostCSS (verified to install, serve and build with real npm; Tailwind 3 keeps the
//! classic `tailwind.config.js` + PostCSS setup that models know best).

/// Names accepted by [`files`].
pub const NAMES: &[&str] = &["react-vite"];

/// The files of template `name` as (relative path, content), or `None` for an unknown name.
pub fn files(name: &str) -> Option<Vec<(&'static str, &'static str)>> {
    match name {
        "react-vite" => Some(vec![
            ("package.json", PACKAGE_JSON),
            ("vite.config.js", VITE_CONFIG),
            ("tailwind.config.js", TAILWIND_CONFIG),
            ("postcss.config.js", POSTCSS_CONFIG),
            ("index.html", INDEX_HTML),
            ("src/main.jsx", MAIN_JSX),
            ("src/App.jsx", APP_JSX),
            ("src/index.css", INDEX_CSS),
        ]),
        _ => None,
    }
}

const PACKAGE_JSON: &str = r#"{
  "name": "react-vite-app",
  "private": true,
  "version": "0.0.0",
  "type": "module",
  "scripts": {
    "dev": "vite",
    "build": "vite build",
    "preview": "vite preview"
  },
  "dependencies": {
    "react": "^19.0.0",
    "react-dom": "^19.0.0"
  },
  "devDependencies": {
    "@vitejs/plugin-react": "^6.0.0",
    "autoprefixer": "^10.4.20",
    "postcss": "^8.4.49",
    "tailwindcss": "^3.4.17",
    "vite": "^8.0.0"
  }
}
"#;

const VITE_CONFIG: &str = r#"import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// host/port/allowedHosts let the same config serve locally and behind cloud sandbox proxies.
export default defineConfig({
  plugins: [react()],
  server: {
    host: true,
    port: 5173,
    strictPort: true,
    allowedHosts: ['.e2b.app', '.e2b.dev', '.vercel.run', 'localhost', '127.0.0.1'],
  },
});
"#;

const TAILWIND_CONFIG: &str = r#"/** @type {import('tailwindcss').Config} */
export default {
  content: ['./index.html', './src/**/*.{js,jsx,ts,tsx}'],
  theme: {
    extend: {},
  },
  plugins: [],
};
"#;

const POSTCSS_CONFIG: &str = r#"export default {
  plugins: {
    tailwindcss: {},
    autoprefixer: {},
  },
};
"#;

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>React + Vite</title>
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/src/main.jsx"></script>
  </body>
</html>
"#;

const MAIN_JSX: &str = r#"import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import './index.css';
import App from './App.jsx';

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
"#;

const APP_JSX: &str = r#"import { useState } from 'react';

export default function App() {
  const [count, setCount] = useState(0);

  return (
    <main className="min-h-screen bg-gradient-to-br from-slate-50 to-indigo-100 flex items-center justify-center p-6">
      <div className="max-w-md w-full rounded-2xl bg-white/80 shadow-xl ring-1 ring-slate-200 p-8 text-center">
        <h1 className="text-3xl font-bold tracking-tight text-slate-900">Your app starts here</h1>
        <p className="mt-3 text-slate-600">
          Describe what you want to build, and watch it appear in this preview.
        </p>
        <button
          type="button"
          onClick={() => setCount((c) => c + 1)}
          className="mt-6 inline-flex items-center rounded-lg bg-indigo-600 px-4 py-2 font-medium text-white shadow hover:bg-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-400"
        >
          Clicked {count} {count === 1 ? 'time' : 'times'}
        </button>
      </div>
    </main>
  );
}
"#;

const INDEX_CSS: &str = r#"@tailwind base;
@tailwind components;
@tailwind utilities;
"#;

/// The template's package.json for Node older than 20.19: Vite 6 and plugin-react 4 (both run
/// on Node 18 and 20), everything else unchanged.
pub fn for_older_node(package_json: &str) -> String {
    package_json
        .replace(
            "\"@vitejs/plugin-react\": \"^6.0.0\"",
            "\"@vitejs/plugin-react\": \"^4.4.0\"",
        )
        .replace("\"vite\": \"^8.0.0\"", "\"vite\": \"^6.3.0\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_files_and_unknown_names_have_none() {
        for name in NAMES {
            let files = files(name).unwrap_or_default();
            assert!(files.iter().any(|(p, _)| *p == "package.json"), "{name}");
        }
        assert!(files("angular").is_none());
    }

    #[test]
    fn react_vite_is_complete_and_consistent() {
        let files = files("react-vite").unwrap_or_default();
        let get = |p: &str| {
            files
                .iter()
                .find(|(path, _)| *path == p)
                .map(|(_, c)| *c)
                .unwrap_or_default()
        };
        let pkg: serde_json::Value = serde_json::from_str(get("package.json")).unwrap();
        assert_eq!(pkg["type"], "module");
        for dep in ["react", "react-dom"] {
            assert!(pkg["dependencies"][dep].is_string(), "{dep}");
        }
        for dep in [
            "vite",
            "@vitejs/plugin-react",
            "tailwindcss",
            "postcss",
            "autoprefixer",
        ] {
            assert!(pkg["devDependencies"][dep].is_string(), "{dep}");
        }
        assert_eq!(pkg["scripts"]["dev"], "vite");
        assert!(get("index.html").contains("/src/main.jsx"));
        assert!(get("src/main.jsx").contains("./App.jsx"));
        assert!(get("src/main.jsx").contains("./index.css"));
        assert!(get("src/index.css").contains("@tailwind utilities"));
        assert!(get("vite.config.js").contains(".e2b.app"));
        assert!(get("vite.config.js").contains("strictPort: true"));
        assert!(get("tailwind.config.js").contains("./src/**/*.{js,jsx,ts,tsx}"));
        assert!(files
            .iter()
            .all(|(p, c)| !p.starts_with('/') && !c.is_empty()));
    }

    #[test]
    fn older_node_gets_vite_6() {
        let files = files("react-vite").unwrap();
        let pkg = files.iter().find(|(p, _)| *p == "package.json").unwrap().1;
        let old: serde_json::Value = serde_json::from_str(&for_older_node(pkg)).unwrap();
        assert_eq!(old["devDependencies"]["vite"], "^6.3.0");
        assert_eq!(old["devDependencies"]["@vitejs/plugin-react"], "^4.4.0");
        assert_eq!(old["dependencies"]["react"], "^19.0.0");
    }
}
