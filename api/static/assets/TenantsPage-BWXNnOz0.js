import{a as e}from"./rolldown-runtime-DoHqwKmD.js";import{a as t,n}from"./preload-helper-BGqbAlK5.js";import{C as r,S as i,T as a,_ as o,b as s,f as c,g as l,l as u,m as d,w as f,x as p,y as m}from"./app-Bw-NizLn.js";import{t as h}from"./paged-BV_ayegB.js";var g=e(t(),1),_=n(),v=u(`
  query Tenants($first: Int!, $after: String) {
    tenants(first: $first, after: $after) {
      nodes {
        id
        name
        slug
        active
        defaultModel
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`),y=u(`
  query TenantsCaughtUp($afterPosition: Int) {
    tenant(afterPosition: $afterPosition) {
      id
    }
  }
`),b=u(`
  mutation CreateTenant($input: CreateTenantInput!) {
    createTenant(input: $input) {
      tenantId
      adminUserId
      position
    }
  }
`),x=u(`
  mutation RenameTenant($input: RenameTenantInput!) {
    renameTenant(input: $input) {
      tenantId
      position
    }
  }
`),S=u(`
  mutation DeactivateTenant($input: DeactivateTenantInput!) {
    deactivateTenant(input: $input) {
      tenantId
      position
    }
  }
`);function C(e){return e.normalize(`NFKD`).replace(/[\u0300-\u036f]/g,``).toLowerCase().replace(/[^a-z0-9]+/g,`-`).replace(/^-+|-+$/g,``).slice(0,63).replace(/-+$/g,``)}function w(){c(`Tenants`);let e=l(),t=h(v,{first:50},e=>e.tenants),n=d(S),[r,i]=(0,g.useState)(null),[u,b]=(0,g.useState)(null),[x,C]=(0,g.useState)(null),w=async e=>{await o(y,{afterPosition:e}).catch(()=>void 0),await t.reload()},D=async()=>{let e=u;if(b(null),!e)return;i(null);let{deactivateTenant:t}=await n.run({input:{tenantId:e.id}});i(`${e.name} is deactivated: its users are locked out.`),await w(t.position)};return(0,_.jsxs)(a,{title:`Tenants`,children:[(0,_.jsx)(E,{onCreated:async(e,t)=>{i(e),await w(t)}}),r&&(0,_.jsx)(`p`,{className:`ok`,role:`status`,children:r}),(0,_.jsx)(p,{error:n.error}),(0,_.jsx)(p,{error:t.error}),!t.loaded&&!t.error?(0,_.jsx)(f,{label:`Loading tenants…`}):t.loaded&&t.nodes.length===0?(0,_.jsx)(s,{children:`No tenants yet.`}):t.loaded&&(0,_.jsxs)(`table`,{className:`data`,"aria-busy":t.loading,children:[(0,_.jsx)(`caption`,{className:`visually-hidden`,children:`Tenants of the platform`}),(0,_.jsx)(`thead`,{children:(0,_.jsxs)(`tr`,{children:[(0,_.jsx)(`th`,{scope:`col`,children:`Name`}),(0,_.jsx)(`th`,{scope:`col`,children:`Slug`}),(0,_.jsx)(`th`,{scope:`col`,children:`Default model`}),(0,_.jsx)(`th`,{scope:`col`,children:`Status`}),(0,_.jsx)(`th`,{scope:`col`,children:(0,_.jsx)(`span`,{className:`visually-hidden`,children:`Actions`})})]})}),(0,_.jsx)(`tbody`,{children:t.nodes.map(t=>{let n=t.id===e?.tenantId;return(0,_.jsxs)(`tr`,{className:t.active?void 0:`inactive`,children:[(0,_.jsx)(`th`,{scope:`row`,children:x===t.id?(0,_.jsx)(T,{tenant:t,onDone:async e=>{C(null),e&&(i(e.message),await w(e.position))}}):(0,_.jsxs)(_.Fragment,{children:[t.name,n&&(0,_.jsx)(`span`,{className:`hint`,children:` (yours)`})]})}),(0,_.jsx)(`td`,{children:(0,_.jsx)(`code`,{children:t.slug})}),(0,_.jsx)(`td`,{children:t.defaultModel}),(0,_.jsx)(`td`,{children:t.active?`Active`:`Deactivated`}),(0,_.jsxs)(`td`,{className:`actions`,children:[x!==t.id&&(0,_.jsx)(`button`,{type:`button`,"aria-label":`Rename ${t.name}`,onClick:()=>C(t.id),children:`Rename`}),!n&&t.active&&(0,_.jsx)(`button`,{type:`button`,"aria-label":`Deactivate ${t.name}`,onClick:()=>b(t),children:`Deactivate`})]})]},t.id)})})]}),t.hasMore&&(0,_.jsx)(`button`,{type:`button`,onClick:()=>void t.loadMore(),disabled:t.loading,children:`More tenants`}),(0,_.jsx)(m,{open:u!==null,title:`Deactivate ${u?.name??``}?`,confirmLabel:`Deactivate tenant`,danger:!0,onConfirm:()=>void D().catch(()=>void 0),onCancel:()=>b(null),children:(0,_.jsxs)(`p`,{children:[`Every user of `,u?.name,` (`,u?.slug,`) is locked out at once: they can no longer sign in, read or write, and its API keys stop working. Its data and audit trail are kept.`]})})]})}function T({tenant:e,onDone:t}){let[n,i]=(0,g.useState)(e.name),a=d(x);return(0,_.jsxs)(r,{onSubmit:async()=>{let{renameTenant:r}=await a.run({input:{tenantId:e.id,name:n.trim()}});t({message:`Renamed to ${n.trim()}.`,position:r.position})},label:`Rename ${e.name}`,children:[(0,_.jsxs)(`div`,{className:`inline-form`,children:[(0,_.jsxs)(`label`,{htmlFor:`tenant-rename`,className:`visually-hidden`,children:[`New name for `,e.name]}),(0,_.jsx)(`input`,{id:`tenant-rename`,required:!0,autoFocus:!0,value:n,onChange:e=>i(e.target.value)}),(0,_.jsx)(`button`,{type:`submit`,className:`primary`,disabled:a.pending,children:`Save name`}),(0,_.jsx)(`button`,{type:`button`,onClick:()=>t(null),children:`Cancel`})]}),(0,_.jsx)(p,{error:a.error})]})}function E({onCreated:e}){let[t,n]=(0,g.useState)(!1),[a,o]=(0,g.useState)(``),[s,c]=(0,g.useState)(``),[l,u]=(0,g.useState)(!1),[f,m]=(0,g.useState)(``),[h,v]=(0,g.useState)(``),[y,x]=(0,g.useState)(``),S=d(b),w=(0,g.useRef)(null),T=(0,g.useRef)(null),E=()=>{n(!1),o(``),c(``),u(!1),m(``),v(``),x(``),S.reset(),setTimeout(()=>T.current?.focus(),0)};return t?(0,_.jsxs)(`section`,{className:`panel`,"aria-labelledby":`create-tenant-heading`,children:[(0,_.jsx)(`h2`,{id:`create-tenant-heading`,children:`Create a tenant`}),(0,_.jsxs)(r,{onSubmit:async()=>{let{createTenant:t}=await S.run({input:{name:a.trim(),slug:s.trim(),adminEmail:f.trim(),adminPassword:y,...h.trim()?{adminDisplayName:h.trim()}:{}}}),n=`${a.trim()} is created; ${f.trim()} signs in to it with the slug ${s.trim()}.`;E(),await e(n,t.position)},label:`Create a tenant`,children:[(0,_.jsxs)(`div`,{className:`settings-grid`,children:[(0,_.jsx)(i,{label:`Tenant name`,children:e=>(0,_.jsx)(`input`,{...e,ref:w,required:!0,value:a,onChange:e=>{o(e.target.value),l||c(C(e.target.value))}})}),(0,_.jsx)(i,{label:`Slug`,hint:`What its users type to sign in: lowercase letters, digits and inner hyphens.`,children:e=>(0,_.jsx)(`input`,{...e,required:!0,pattern:`[a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?`,spellCheck:!1,value:s,onChange:e=>{c(e.target.value),u(!0)}})}),(0,_.jsx)(i,{label:`First admin's e-mail`,children:e=>(0,_.jsx)(`input`,{...e,type:`email`,required:!0,autoComplete:`off`,value:f,onChange:e=>m(e.target.value)})}),(0,_.jsx)(i,{label:`First admin's name`,hint:`Optional; “Administrator” if empty.`,children:e=>(0,_.jsx)(`input`,{...e,autoComplete:`off`,value:h,onChange:e=>v(e.target.value)})}),(0,_.jsx)(i,{label:`First admin's password`,hint:`12 to 1024 characters.`,children:e=>(0,_.jsx)(`input`,{...e,type:`password`,required:!0,minLength:12,autoComplete:`new-password`,value:y,onChange:e=>x(e.target.value)})})]}),(0,_.jsx)(p,{error:S.error}),(0,_.jsxs)(`div`,{className:`form-actions`,children:[(0,_.jsx)(`button`,{type:`submit`,className:`primary`,disabled:S.pending,children:`Create tenant`}),(0,_.jsx)(`button`,{type:`button`,onClick:E,children:`Cancel`})]})]})]}):(0,_.jsx)(`div`,{className:`section-header`,children:(0,_.jsx)(`button`,{ref:T,type:`button`,className:`primary`,"aria-expanded":!1,onClick:()=>{n(!0),setTimeout(()=>w.current?.focus(),0)},children:`Create tenant`})})}export{w as TenantsPage};