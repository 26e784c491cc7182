const __vite__mapDeps=(i,m=__vite__mapDeps,d=(m.f||(m.f=["assets/Markdown-Bmh4WBfk.js","assets/rolldown-runtime-DoHqwKmD.js","assets/preload-helper-BGqbAlK5.js","assets/KnowledgePicker-BUT01sqv.js","assets/useDocuments-CC3eqSgB.js","assets/AdminPage-BPthK5pF.js","assets/paged-BV_ayegB.js","assets/DocumentsPage-jFV9P92T.js","assets/TenantsPage-BWXNnOz0.js"])))=>i.map(i=>d[i]);
import{a as e}from"./rolldown-runtime-DoHqwKmD.js";import{a as t,n,r,t as i}from"./preload-helper-BGqbAlK5.js";import{n as a}from"./dist-B5d9IcWF.js";var o=r(),s=e(t(),1),c=n(),l={UNAUTHENTICATED:`Your sign-in has ended. Sign in again.`,FORBIDDEN:`You are not allowed to do this.`,NOT_FOUND:`Not found.`,RATE_LIMITED:`Too many requests. Try again shortly.`,NETWORK:`Parley cannot be reached. Check your connection.`};function u(e){return e.code===`BAD_USER_INPUT`||e.code===`CONFLICT`?e.message:l[e.code]??e.message}function d({error:e,messages:t={}}){return e?(0,c.jsx)(`p`,{className:`error`,role:`alert`,"data-code":e.code,children:t[e.code]??u(e)}):null}function f({label:e=`Loading…`}){return(0,c.jsx)(`p`,{className:`loading`,role:`status`,"aria-live":`polite`,children:e})}function p({children:e}){return(0,c.jsx)(`p`,{className:`empty`,children:e})}function m({title:e,actions:t,children:n}){let r=(0,s.useRef)(null);return(0,s.useEffect)(()=>{r.current?.focus({preventScroll:!0})},[e]),(0,c.jsxs)(`section`,{className:`page`,"aria-labelledby":`page-title`,children:[(0,c.jsxs)(`header`,{className:`page-header`,children:[(0,c.jsx)(`h1`,{id:`page-title`,tabIndex:-1,ref:r,children:e}),t&&(0,c.jsx)(`div`,{className:`page-actions`,children:t})]}),n]})}function h({label:e,hint:t,children:n}){let r=(0,s.useId)(),i=t?`${r}-hint`:void 0;return(0,c.jsxs)(`div`,{className:`field`,children:[(0,c.jsx)(`label`,{htmlFor:r,children:e}),n({id:r,"aria-describedby":i}),t&&(0,c.jsx)(`small`,{id:i,className:`hint`,children:t})]})}function g({onSubmit:e,children:t,label:n}){return(0,c.jsx)(`form`,{onSubmit:t=>{t.preventDefault(),Promise.resolve(e()).catch(()=>void 0)},"aria-label":n,noValidate:!1,children:t})}function _({open:e,title:t,children:n,confirmLabel:r,danger:i=!1,onConfirm:a,onCancel:o}){let l=(0,s.useRef)(null),u=(0,s.useId)();return(0,s.useEffect)(()=>{let t=l.current;t&&(e&&!t.open&&t.showModal?.(),!e&&t.open&&t.close?.())},[e]),(0,c.jsxs)(`dialog`,{ref:l,"aria-labelledby":u,onCancel:o,className:`dialog`,children:[(0,c.jsx)(`h2`,{id:u,children:t}),(0,c.jsx)(`div`,{className:`dialog-body`,children:n}),(0,c.jsxs)(`div`,{className:`dialog-actions`,children:[(0,c.jsx)(`button`,{type:`button`,onClick:o,autoFocus:!0,children:`Cancel`}),(0,c.jsx)(`button`,{type:`button`,className:i?`danger`:`primary`,onClick:a,children:r})]})]})}function v(e){return e?new Date(e).toLocaleString(void 0,{dateStyle:`medium`,timeStyle:`short`}):``}var y=class extends Error{code;retryAfterSeconds;constructor(e,t,n){super(t),this.code=e,this.retryAfterSeconds=n}},b=`parley_csrf`,x=60;function S(){let e=document.cookie.split(`; `).find(e=>e.startsWith(`${b}=`));return e?decodeURIComponent(e.slice(12)):``}async function C(e,t,n={}){let r=await fetch(e,{method:`POST`,credentials:`same-origin`,headers:{"Content-Type":`application/json`,"X-CSRF-Token":S(),...n},body:t===void 0?void 0:JSON.stringify(t)}),i=await r.json().catch(()=>({}));if(!r.ok){let e=i?.error??{};throw new y(e.code??`INTERNAL`,e.message??`the server answered ${r.status}`,e.retryAfterSeconds)}return i}async function w(e){let t=navigator.locks;return t?t.request(`parley-session-cookies`,e):e()}var T=e=>new Promise(t=>setTimeout(t,e)),E=new class{accessToken=null;expiresAt=0;current=null;refreshing=null;listeners=new Set;tabs=typeof BroadcastChannel>`u`?null:new BroadcastChannel(`parley-session`);constructor(){this.tabs&&(this.tabs.onmessage=e=>this.heard(e.data))}heard(e){e.kind===`signed-out`?this.forget():this.current&&this.current.id!==e.userId&&location.reload()}tell(e){this.tabs?.postMessage(e)}get user(){return this.current}subscribe(e){return this.listeners.add(e),()=>this.listeners.delete(e)}adopt(e){return this.accessToken=e.accessToken,this.expiresAt=Date.now()+e.expiresIn*1e3,this.current=e.user,this.emit(),e.user}forget(){this.accessToken=null,this.expiresAt=0,this.current!==null&&(this.current=null,this.emit())}emit(){for(let e of this.listeners)e(this.current)}update(e){if(!this.current)return;let t={...this.current,...e};JSON.stringify(t)!==JSON.stringify(this.current)&&(this.current=t,this.emit())}async signedIn(e,t){let n=this.adopt(await w(()=>C(e,t)));return this.tell({kind:`signed-in`,userId:n.id}),n}signIn(e,t,n){return this.signedIn(`/auth/session`,{tenant:e,email:t,password:n})}finishOidc(e,t,n){return this.signedIn(`/auth/session/oidc`,{tenant:e,code:t,codeVerifier:n})}async changePassword(e,t){let n=await this.token();return this.adopt(await w(()=>C(`/auth/session/password`,{currentPassword:e,newPassword:t},{Authorization:`Bearer ${n}`})))}async resume(){return await this.refresh()?this.current:null}refresh(){return this.refreshing??=w(async()=>{for(let e=0;;e++)try{return this.adopt(await C(`/auth/session/refresh`))&&this.accessToken}catch(t){if(t instanceof y&&t.code===`UNAUTHENTICATED`)return this.forget(),null;if(t instanceof y&&t.code===`RATE_LIMITED`&&e<2){await T(Math.min((t.retryAfterSeconds??1)*1e3,3e4));continue}throw t}}).finally(()=>{this.refreshing=null}),this.refreshing}async token(){return this.accessToken&&Date.now()<this.expiresAt-x*1e3?this.accessToken:this.refresh()}async signOut(){try{await w(()=>C(`/auth/session/logout`))}finally{this.forget(),this.tell({kind:`signed-out`})}}ended(){this.forget()}},D=class extends Error{errors;code;constructor(e){super(e.map(e=>e.message).join(`; `)||`the request failed`),this.errors=e,this.code=e[0]?.extensions?.code??`INTERNAL`}};async function O(e,t,n){let r=await fetch(`/graphql`,{method:`POST`,headers:{"Content-Type":`application/json`,Accept:`application/graphql-response+json, application/json`,...n?{Authorization:`Bearer ${n}`}:{}},body:JSON.stringify({query:e,variables:t??{}})});if(r.status>=500)throw new D([{message:`the server answered ${r.status}`,extensions:{code:`INTERNAL`}}]);return r.json()}async function k(e,...[t]){let n=e.toString(),r=await O(n,t,await E.token());if(r.errors?.[0]?.extensions?.code===`UNAUTHENTICATED`){let e=await E.refresh();e&&(r=await O(n,t,e))}if(r.errors?.length)throw r.errors[0].extensions?.code===`UNAUTHENTICATED`&&E.ended(),new D(r.errors);return r.data}var A=null,j=!1,ee=new Set([4401,4403]),M=new Set;function N(){if(!A){let e=location.protocol===`https:`?`wss`:`ws`;A=a({url:`${e}://${location.host}/graphql`,connectionParams:async()=>{let e=j?await E.refresh().catch(()=>E.token()):await E.token();return j=!1,e?{Authorization:`Bearer ${e}`}:{}},lazy:!0,keepAlive:15e3,retryAttempts:1/0,shouldRetry:()=>!0,retryWait:async e=>{let t=Math.min(1e3*2**e,1e4);await new Promise(e=>setTimeout(e,t/2+t/2*Math.random()))},on:{connected:()=>M.forEach(e=>e(`connected`)),closed:e=>{ee.has(e?.code??0)&&(j=!0),M.forEach(e=>e(`closed`))}}})}return A}function te(e){return M.add(e),()=>M.delete(e)}function ne(){A?.dispose(),A=null}function re(e,t,n){return N().subscribe({query:e.toString(),variables:t},{next:e=>{e.errors?.length?n.error?.(new D(e.errors)):e.data&&n.next(e.data)},error:e=>{let t=Array.isArray(e)?e:[{message:String(e?.message??e),extensions:{code:`INTERNAL`}}];n.error?.(new D(t))},complete:()=>n.complete?.()})}function P(){return(0,s.useSyncExternalStore)(e=>E.subscribe(e),()=>E.user)}function ie(e,t,{skip:n=!1}={}){let[r,i]=(0,s.useState)(),[a,o]=(0,s.useState)(),[c,l]=(0,s.useState)(!n),u=JSON.stringify(t),d=(0,s.useRef)(0),f=(0,s.useCallback)(async()=>{if(n)return;let t=++d.current;l(!0);try{let n=await k(e,JSON.parse(u));t===d.current&&(i(n),o(void 0))}catch(e){t===d.current&&o(F(e))}finally{t===d.current&&l(!1)}},[e,u,n]);return(0,s.useEffect)(()=>{f()},[f]),{data:r,error:a,loading:c,reload:f}}function F(e){return e instanceof D?e:new D([{message:e instanceof Error?e.message:String(e),extensions:{code:`NETWORK`}}])}function ae(e){let[t,n]=(0,s.useState)(!1),[r,i]=(0,s.useState)();return{run:(0,s.useCallback)(async t=>{n(!0),i(void 0);try{return await k(e,t)}catch(e){let t=F(e);throw i(t),t}finally{n(!1)}},[e]),pending:t,error:r,reset:()=>i(void 0)}}var I=new Set,oe=()=>I.forEach(e=>e());window.addEventListener(`popstate`,oe);function se(e){return I.add(e),()=>I.delete(e)}function L(e,{replace:t=!1}={}){e!==location.pathname+location.search&&(t?history.replaceState(null,``,e):history.pushState(null,``,e),oe())}function R(){let e=(0,s.useSyncExternalStore)(se,()=>location.pathname+location.search),t=new URL(e,location.origin);return{path:t.pathname,query:t.searchParams}}function ce(e,t){let n=e.split(`/`).filter(Boolean),r=t.split(`/`).filter(Boolean);if(n.length!==r.length)return null;let i={};for(let e=0;e<n.length;e++)if(n[e].startsWith(`:`))i[n[e].slice(1)]=decodeURIComponent(r[e]);else if(n[e]!==r[e])return null;return i}function z(e){(0,s.useEffect)(()=>{document.title=e?`${e} · Parley`:`Parley`},[e])}var B=class extends String{__apiType;value;__meta__;constructor(e,t){super(e),this.value=e,this.__meta__=t}toString(){return this.value}},le=new B(`
    fragment MessageFields on Message {
  id
  role
  content
  model
  createdAt
  position
  replyTo
  finishReason
  citations {
    rank
    cited
    erased
    documentId
    chunkId
    title
    location
    text
  }
}
    `,{fragmentName:`MessageFields`}),ue=new B(`
    fragment DocumentFields on Document {
  id
  title
  collection
  ownerId
  mediaType
  sizeBytes
  status
  revision
  chunks
  pages
  characters
  embeddingModel
  failureCode
  failureReason
  createdAt
  updatedAt
  position
}
    `,{fragmentName:`DocumentFields`}),de={"\n  query Me {\n    me {\n      id\n      tenantId\n      email\n      displayName\n      role\n      active\n    }\n  }\n":new B(`
    query Me {
  me {
    id
    tenantId
    email
    displayName
    role
    active
  }
}
    `),"\n  mutation LogoutEverywhere {\n    logoutEverywhere {\n      sessionsRevoked\n    }\n  }\n":new B(`
    mutation LogoutEverywhere {
  logoutEverywhere {
    sessionsRevoked
  }
}
    `),"\n  query AuditLog($aggregateId: ID!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {\n    auditLog(aggregateId: $aggregateId, from: $from, to: $to, first: $first, after: $after) {\n      nodes {\n        position\n        eventType\n        aggregateVersion\n        actorId\n        occurredAt\n        chainHash\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n":new B(`
    query AuditLog($aggregateId: ID!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
  auditLog(
    aggregateId: $aggregateId
    from: $from
    to: $to
    first: $first
    after: $after
  ) {
    nodes {
      position
      eventType
      aggregateVersion
      actorId
      occurredAt
      chainHash
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `),"\n  query ChatAt($id: ID!, $asOf: DateTime!) {\n    chatAt(id: $id, asOf: $asOf) {\n      id\n      title\n      status\n      model\n      ownerId\n      version\n      asOf\n      createdAt\n      updatedAt\n      messages {\n        id\n        role\n        content\n      }\n    }\n  }\n":new B(`
    query ChatAt($id: ID!, $asOf: DateTime!) {
  chatAt(id: $id, asOf: $asOf) {
    id
    title
    status
    model
    ownerId
    version
    asOf
    createdAt
    updatedAt
    messages {
      id
      role
      content
    }
  }
}
    `),"\n  query ProviderKeys {\n    providerKeys {\n      provider\n      fingerprint\n      last4\n    }\n  }\n":new B(`
    query ProviderKeys {
  providerKeys {
    provider
    fingerprint
    last4
  }
}
    `),"\n  mutation SetProviderKey($input: SetProviderKeyInput!) {\n    setProviderKey(input: $input) {\n      key {\n        provider\n        fingerprint\n        last4\n      }\n      position\n    }\n  }\n":new B(`
    mutation SetProviderKey($input: SetProviderKeyInput!) {
  setProviderKey(input: $input) {
    key {
      provider
      fingerprint
      last4
    }
    position
  }
}
    `),"\n  mutation RemoveProviderKey($input: ProviderInput!) {\n    removeProviderKey(input: $input) {\n      position\n    }\n  }\n":new B(`
    mutation RemoveProviderKey($input: ProviderInput!) {
  removeProviderKey(input: $input) {
    position
  }
}
    `),"\n  query ApiKeys {\n    apiKeys {\n      keyId\n      name\n      role\n      prefix\n      last4\n      serviceAccountId\n      createdAt\n      revokedAt\n      revoked\n    }\n  }\n":new B(`
    query ApiKeys {
  apiKeys {
    keyId
    name
    role
    prefix
    last4
    serviceAccountId
    createdAt
    revokedAt
    revoked
  }
}
    `),"\n  mutation CreateApiKey($input: CreateApiKeyInput!) {\n    createApiKey(input: $input) {\n      key {\n        keyId\n        name\n        role\n        prefix\n        last4\n      }\n      secret\n      position\n    }\n  }\n":new B(`
    mutation CreateApiKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    key {
      keyId
      name
      role
      prefix
      last4
    }
    secret
    position
  }
}
    `),"\n  mutation RevokeApiKey($input: RevokeApiKeyInput!) {\n    revokeApiKey(input: $input) {\n      keyId\n      position\n    }\n  }\n":new B(`
    mutation RevokeApiKey($input: RevokeApiKeyInput!) {
  revokeApiKey(input: $input) {
    keyId
    position
  }
}
    `),"\n  query TenantSettings($afterPosition: Int) {\n    tenant(afterPosition: $afterPosition) {\n      id\n      name\n      defaultModel\n      allowedModels\n      retentionDays\n      modelSettings {\n        fallbackModels\n        systemPrompt\n        cacheTtlSeconds\n        enabledProviders\n        modelMaxTokens {\n          model\n          maxTokens\n        }\n        userRequestsPerMinute\n        tenantRequestsPerMinute\n        tenantTokensPerMinute\n        monthlyBudgetUsd\n      }\n    }\n  }\n":new B(`
    query TenantSettings($afterPosition: Int) {
  tenant(afterPosition: $afterPosition) {
    id
    name
    defaultModel
    allowedModels
    retentionDays
    modelSettings {
      fallbackModels
      systemPrompt
      cacheTtlSeconds
      enabledProviders
      modelMaxTokens {
        model
        maxTokens
      }
      userRequestsPerMinute
      tenantRequestsPerMinute
      tenantTokensPerMinute
      monthlyBudgetUsd
    }
  }
}
    `),"\n  mutation UpdateTenantSettings($input: UpdateTenantSettingsInput!) {\n    updateTenantSettings(input: $input) {\n      tenantId\n      position\n    }\n  }\n":new B(`
    mutation UpdateTenantSettings($input: UpdateTenantSettingsInput!) {
  updateTenantSettings(input: $input) {
    tenantId
    position
  }
}
    `),"\n  query OidcConfig {\n    oidcConfig {\n      issuer\n      clientId\n      hasClientSecret\n      allowedDomains\n      autoProvisionRole\n      redirectUris\n      loginPath\n      callbackPath\n    }\n  }\n":new B(`
    query OidcConfig {
  oidcConfig {
    issuer
    clientId
    hasClientSecret
    allowedDomains
    autoProvisionRole
    redirectUris
    loginPath
    callbackPath
  }
}
    `),"\n  mutation ConfigureOidc($input: ConfigureOidcInput!) {\n    configureOidc(input: $input) {\n      position\n    }\n  }\n":new B(`
    mutation ConfigureOidc($input: ConfigureOidcInput!) {
  configureOidc(input: $input) {
    position
  }
}
    `),"\n  mutation RemoveOidc {\n    removeOidc {\n      position\n    }\n  }\n":new B(`
    mutation RemoveOidc {
  removeOidc {
    position
  }
}
    `),"\n  query Usage($from: Date!, $to: Date!) {\n    byDay: usage(from: $from, to: $to, groupBy: [DAY]) {\n      day\n      userMessages\n      assistantMessages\n      inputTokens\n      outputTokens\n      costUsd\n    }\n    byUser: usage(from: $from, to: $to, groupBy: [USER]) {\n      userId\n      userMessages\n      assistantMessages\n      inputTokens\n      outputTokens\n      costUsd\n    }\n    byModel: usage(from: $from, to: $to, groupBy: [MODEL]) {\n      model\n      userMessages\n      assistantMessages\n      inputTokens\n      outputTokens\n      costUsd\n      averageLatencyMs\n    }\n  }\n":new B(`
    query Usage($from: Date!, $to: Date!) {
  byDay: usage(from: $from, to: $to, groupBy: [DAY]) {
    day
    userMessages
    assistantMessages
    inputTokens
    outputTokens
    costUsd
  }
  byUser: usage(from: $from, to: $to, groupBy: [USER]) {
    userId
    userMessages
    assistantMessages
    inputTokens
    outputTokens
    costUsd
  }
  byModel: usage(from: $from, to: $to, groupBy: [MODEL]) {
    model
    userMessages
    assistantMessages
    inputTokens
    outputTokens
    costUsd
    averageLatencyMs
  }
}
    `),"\n  query ModelGateway {\n    modelGateway {\n      providers\n      reportedAt\n      deployments {\n        deployment\n        state\n        consecutiveFailures\n        openSecondsLeft\n        lastError\n      }\n    }\n  }\n":new B(`
    query ModelGateway {
  modelGateway {
    providers
    reportedAt
    deployments {
      deployment
      state
      consecutiveFailures
      openSecondsLeft
      lastError
    }
  }
}
    `),"\n  query Users($first: Int!, $after: String, $afterPosition: Int) {\n    users(first: $first, after: $after, afterPosition: $afterPosition) {\n      nodes {\n        id\n        email\n        displayName\n        role\n        active\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n":new B(`
    query Users($first: Int!, $after: String, $afterPosition: Int) {
  users(first: $first, after: $after, afterPosition: $afterPosition) {
    nodes {
      id
      email
      displayName
      role
      active
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `),"\n  mutation RegisterUser($input: RegisterUserInput!) {\n    registerUser(input: $input) {\n      userId\n      position\n    }\n  }\n":new B(`
    mutation RegisterUser($input: RegisterUserInput!) {
  registerUser(input: $input) {
    userId
    position
  }
}
    `),"\n  mutation ChangeUserRole($input: ChangeUserRoleInput!) {\n    changeUserRole(input: $input) {\n      userId\n      position\n    }\n  }\n":new B(`
    mutation ChangeUserRole($input: ChangeUserRoleInput!) {
  changeUserRole(input: $input) {
    userId
    position
  }
}
    `),"\n  mutation DeactivateUser($input: DeactivateUserInput!) {\n    deactivateUser(input: $input) {\n      userId\n      position\n    }\n  }\n":new B(`
    mutation DeactivateUser($input: DeactivateUserInput!) {
  deactivateUser(input: $input) {
    userId
    position
  }
}
    `),"\n  mutation EraseUser($input: EraseUserInput!) {\n    eraseUser(input: $input) {\n      userId\n      position\n    }\n  }\n":new B(`
    mutation EraseUser($input: EraseUserInput!) {
  eraseUser(input: $input) {
    userId
    position
  }
}
    `),"\n  query UserNames {\n    users(first: 100) {\n      nodes {\n        id\n        email\n      }\n    }\n  }\n":new B(`
    query UserNames {
  users(first: 100) {
    nodes {
      id
      email
    }
  }
}
    `),"\n  query TenantModels {\n    tenant {\n      id\n      defaultModel\n      allowedModels\n    }\n  }\n":new B(`
    query TenantModels {
  tenant {
    id
    defaultModel
    allowedModels
  }
}
    `),"\n  query ChatList($first: Int!, $after: String, $afterPosition: Int) {\n    chats(first: $first, after: $after, afterPosition: $afterPosition) {\n      nodes {\n        id\n        title\n        status\n        model\n        createdAt\n        lastMessageAt\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n":new B(`
    query ChatList($first: Int!, $after: String, $afterPosition: Int) {
  chats(first: $first, after: $after, afterPosition: $afterPosition) {
    nodes {
      id
      title
      status
      model
      createdAt
      lastMessageAt
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `),"\n  fragment MessageFields on Message {\n    id\n    role\n    content\n    model\n    createdAt\n    position\n    replyTo\n    finishReason\n    citations {\n      rank\n      cited\n      erased\n      documentId\n      chunkId\n      title\n      location\n      text\n    }\n  }\n":le,"\n  query ChatView($id: ID!, $afterPosition: Int, $first: Int!, $after: String) {\n    chat(id: $id, afterPosition: $afterPosition) {\n      id\n      title\n      model\n      status\n      ownerId\n      position\n      messages(first: $first, after: $after) {\n        nodes {\n          ...MessageFields\n        }\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n      }\n    }\n  }\n":new B(`
    query ChatView($id: ID!, $afterPosition: Int, $first: Int!, $after: String) {
  chat(id: $id, afterPosition: $afterPosition) {
    id
    title
    model
    status
    ownerId
    position
    messages(first: $first, after: $after) {
      nodes {
        ...MessageFields
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
    fragment MessageFields on Message {
  id
  role
  content
  model
  createdAt
  position
  replyTo
  finishReason
  citations {
    rank
    cited
    erased
    documentId
    chunkId
    title
    location
    text
  }
}`),"\n  subscription ChatEvents($chatId: ID!, $afterPosition: Int) {\n    chatEvents(chatId: $chatId, afterPosition: $afterPosition) {\n      __typename\n      ... on MessageAdded {\n        message {\n          ...MessageFields\n        }\n      }\n      ... on ReplyDelta {\n        messageId\n        delta\n        offset\n      }\n      ... on ChatDeleted {\n        chatId\n      }\n    }\n  }\n":new B(`
    subscription ChatEvents($chatId: ID!, $afterPosition: Int) {
  chatEvents(chatId: $chatId, afterPosition: $afterPosition) {
    __typename
    ... on MessageAdded {
      message {
        ...MessageFields
      }
    }
    ... on ReplyDelta {
      messageId
      delta
      offset
    }
    ... on ChatDeleted {
      chatId
    }
  }
}
    fragment MessageFields on Message {
  id
  role
  content
  model
  createdAt
  position
  replyTo
  finishReason
  citations {
    rank
    cited
    erased
    documentId
    chunkId
    title
    location
    text
  }
}`),"\n  mutation StartChat($input: StartChatInput!) {\n    startChat(input: $input) {\n      chatId\n      position\n    }\n  }\n":new B(`
    mutation StartChat($input: StartChatInput!) {
  startChat(input: $input) {
    chatId
    position
  }
}
    `),"\n  mutation SendMessage($input: SendMessageInput!) {\n    sendMessage(input: $input) {\n      messageId\n      position\n      duplicate\n      message {\n        ...MessageFields\n      }\n    }\n  }\n":new B(`
    mutation SendMessage($input: SendMessageInput!) {
  sendMessage(input: $input) {
    messageId
    position
    duplicate
    message {
      ...MessageFields
    }
  }
}
    fragment MessageFields on Message {
  id
  role
  content
  model
  createdAt
  position
  replyTo
  finishReason
  citations {
    rank
    cited
    erased
    documentId
    chunkId
    title
    location
    text
  }
}`),"\n  mutation RenameChat($input: RenameChatInput!) {\n    renameChat(input: $input) {\n      chatId\n      position\n    }\n  }\n":new B(`
    mutation RenameChat($input: RenameChatInput!) {
  renameChat(input: $input) {
    chatId
    position
  }
}
    `),"\n  mutation ArchiveChat($input: ChatIdInput!) {\n    archiveChat(input: $input) {\n      chatId\n      position\n    }\n  }\n":new B(`
    mutation ArchiveChat($input: ChatIdInput!) {
  archiveChat(input: $input) {
    chatId
    position
  }
}
    `),"\n  mutation DeleteChat($input: ChatIdInput!) {\n    deleteChat(input: $input) {\n      chatId\n      position\n    }\n  }\n":new B(`
    mutation DeleteChat($input: ChatIdInput!) {
  deleteChat(input: $input) {
    chatId
    position
  }
}
    `),"\n  mutation StopGeneration($input: ChatIdInput!) {\n    stopGeneration(input: $input) {\n      requested\n    }\n  }\n":new B(`
    mutation StopGeneration($input: ChatIdInput!) {
  stopGeneration(input: $input) {
    requested
  }
}
    `),"\n  query ChatKnowledge($chatId: ID!, $afterPosition: Int) {\n    chatKnowledge(chatId: $chatId, afterPosition: $afterPosition) {\n      tenantCollection\n      documents {\n        id\n        title\n        collection\n        status\n      }\n    }\n  }\n":new B(`
    query ChatKnowledge($chatId: ID!, $afterPosition: Int) {
  chatKnowledge(chatId: $chatId, afterPosition: $afterPosition) {
    tenantCollection
    documents {
      id
      title
      collection
      status
    }
  }
}
    `),"\n  mutation AttachKnowledge($input: AttachKnowledgeInput!) {\n    attachKnowledge(input: $input) {\n      chatId\n      position\n    }\n  }\n":new B(`
    mutation AttachKnowledge($input: AttachKnowledgeInput!) {
  attachKnowledge(input: $input) {
    chatId
    position
  }
}
    `),"\n  fragment DocumentFields on Document {\n    id\n    title\n    collection\n    ownerId\n    mediaType\n    sizeBytes\n    status\n    revision\n    chunks\n    pages\n    characters\n    embeddingModel\n    failureCode\n    failureReason\n    createdAt\n    updatedAt\n    position\n  }\n":ue,"\n  query Documents($collection: DocumentCollection, $first: Int!, $after: String, $afterPosition: Int) {\n    documents(collection: $collection, first: $first, after: $after, afterPosition: $afterPosition) {\n      nodes {\n        ...DocumentFields\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n":new B(`
    query Documents($collection: DocumentCollection, $first: Int!, $after: String, $afterPosition: Int) {
  documents(
    collection: $collection
    first: $first
    after: $after
    afterPosition: $afterPosition
  ) {
    nodes {
      ...DocumentFields
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    fragment DocumentFields on Document {
  id
  title
  collection
  ownerId
  mediaType
  sizeBytes
  status
  revision
  chunks
  pages
  characters
  embeddingModel
  failureCode
  failureReason
  createdAt
  updatedAt
  position
}`),"\n  query DocumentById($id: ID!, $afterPosition: Int) {\n    document(id: $id, afterPosition: $afterPosition) {\n      ...DocumentFields\n    }\n  }\n":new B(`
    query DocumentById($id: ID!, $afterPosition: Int) {
  document(id: $id, afterPosition: $afterPosition) {
    ...DocumentFields
  }
}
    fragment DocumentFields on Document {
  id
  title
  collection
  ownerId
  mediaType
  sizeBytes
  status
  revision
  chunks
  pages
  characters
  embeddingModel
  failureCode
  failureReason
  createdAt
  updatedAt
  position
}`),"\n  mutation ReprocessDocument($input: DocumentIdInput!) {\n    reprocessDocument(input: $input) {\n      documentId\n      position\n    }\n  }\n":new B(`
    mutation ReprocessDocument($input: DocumentIdInput!) {
  reprocessDocument(input: $input) {
    documentId
    position
  }
}
    `),"\n  mutation DeleteDocument($input: DocumentIdInput!) {\n    deleteDocument(input: $input) {\n      documentId\n      position\n    }\n  }\n":new B(`
    mutation DeleteDocument($input: DocumentIdInput!) {
  deleteDocument(input: $input) {
    documentId
    position
  }
}
    `),"\n  query Tenants($first: Int!, $after: String) {\n    tenants(first: $first, after: $after) {\n      nodes {\n        id\n        name\n        slug\n        active\n        defaultModel\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n":new B(`
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
    `),"\n  query TenantsCaughtUp($afterPosition: Int) {\n    tenant(afterPosition: $afterPosition) {\n      id\n    }\n  }\n":new B(`
    query TenantsCaughtUp($afterPosition: Int) {
  tenant(afterPosition: $afterPosition) {
    id
  }
}
    `),"\n  mutation CreateTenant($input: CreateTenantInput!) {\n    createTenant(input: $input) {\n      tenantId\n      adminUserId\n      position\n    }\n  }\n":new B(`
    mutation CreateTenant($input: CreateTenantInput!) {
  createTenant(input: $input) {
    tenantId
    adminUserId
    position
  }
}
    `),"\n  mutation RenameTenant($input: RenameTenantInput!) {\n    renameTenant(input: $input) {\n      tenantId\n      position\n    }\n  }\n":new B(`
    mutation RenameTenant($input: RenameTenantInput!) {
  renameTenant(input: $input) {
    tenantId
    position
  }
}
    `),"\n  mutation DeactivateTenant($input: DeactivateTenantInput!) {\n    deactivateTenant(input: $input) {\n      tenantId\n      position\n    }\n  }\n":new B(`
    mutation DeactivateTenant($input: DeactivateTenantInput!) {
  deactivateTenant(input: $input) {
    tenantId
    position
  }
}
    `),"\n  query SearchKnowledge($query: String!, $first: Int!, $mode: RetrievalMode!) {\n    searchKnowledge(query: $query, first: $first, mode: $mode) {\n      documentId\n      chunkId\n      title\n      location\n      text\n    }\n  }\n":new B(`
    query SearchKnowledge($query: String!, $first: Int!, $mode: RetrievalMode!) {
  searchKnowledge(query: $query, first: $first, mode: $mode) {
    documentId
    chunkId
    title
    location
    text
  }
}
    `),"\n  query SearchMessages($query: String!, $first: Int!, $after: String) {\n    searchMessages(query: $query, first: $first, after: $after) {\n      nodes {\n        kind\n        chatId\n        chatTitle\n        messageId\n        role\n        highlights\n        content\n        createdAt\n        position\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n":new B(`
    query SearchMessages($query: String!, $first: Int!, $after: String) {
  searchMessages(query: $query, first: $first, after: $after) {
    nodes {
      kind
      chatId
      chatTitle
      messageId
      role
      highlights
      content
      createdAt
      position
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `)};function V(e){return de[e]??{}}var fe=V(`
  mutation LogoutEverywhere {
    logoutEverywhere {
      sessionsRevoked
    }
  }
`);function pe(){z(`Account`);let e=P(),[t,n]=(0,s.useState)(``),[r,i]=(0,s.useState)(``),[a,o]=(0,s.useState)(``),[l,u]=(0,s.useState)(null),[f,p]=(0,s.useState)(!1),_=ae(fe);return e?(0,c.jsxs)(m,{title:`Account`,children:[(0,c.jsxs)(`dl`,{className:`facts`,children:[(0,c.jsx)(`dt`,{children:`Name`}),(0,c.jsx)(`dd`,{children:e.displayName}),(0,c.jsx)(`dt`,{children:`E-mail`}),(0,c.jsx)(`dd`,{children:e.email}),(0,c.jsx)(`dt`,{children:`Role`}),(0,c.jsx)(`dd`,{children:e.role.replace(`_`,` `).toLowerCase()})]}),(0,c.jsx)(`h2`,{children:`Change password`}),(0,c.jsx)(`p`,{className:`hint`,children:`Every other sign-in of yours ends; this browser stays signed in.`}),(0,c.jsxs)(g,{onSubmit:async()=>{if(p(!1),r!==a)u(new y(`BAD_USER_INPUT`,`The two new passwords differ.`));else try{await E.changePassword(t,r),u(null),p(!0),n(``),i(``),o(``)}catch(e){u(e instanceof y?e:new y(`NETWORK`,String(e)))}},label:`Change password`,children:[(0,c.jsx)(h,{label:`Current password`,children:e=>(0,c.jsx)(`input`,{...e,type:`password`,autoComplete:`current-password`,required:!0,value:t,onChange:e=>n(e.target.value)})}),(0,c.jsx)(h,{label:`New password`,hint:`12 to 1024 characters`,children:e=>(0,c.jsx)(`input`,{...e,type:`password`,autoComplete:`new-password`,required:!0,minLength:12,value:r,onChange:e=>i(e.target.value)})}),(0,c.jsx)(h,{label:`New password again`,children:e=>(0,c.jsx)(`input`,{...e,type:`password`,autoComplete:`new-password`,required:!0,minLength:12,value:a,onChange:e=>o(e.target.value)})}),(0,c.jsx)(d,{error:l}),f&&(0,c.jsx)(`p`,{role:`status`,className:`ok`,children:`Password changed.`}),(0,c.jsx)(`button`,{type:`submit`,className:`primary`,children:`Change password`})]}),(0,c.jsx)(`h2`,{children:`Sign out everywhere`}),(0,c.jsx)(`p`,{className:`hint`,children:`Ends every sign-in of yours, on every device, this one included.`}),(0,c.jsx)(d,{error:_.error}),(0,c.jsx)(`button`,{type:`button`,className:`danger`,disabled:_.pending,onClick:async()=>{await _.run({}),await E.signOut().catch(()=>void 0)},children:`Sign out everywhere`})]}):null}var me=new Set([`NETWORK`,`INTERNAL`,`INTERNAL_SERVER_ERROR`]);async function H(e,{attempts:t=4,delay:n=e=>400*2**(e-1),sleep:r=e=>new Promise(t=>setTimeout(t,e))}={}){for(let i=1;;i++)try{return await e()}catch(e){let a=F(e);if(i>=t||!me.has(a.code))throw a;await r(n(i))}}function U(){return crypto.randomUUID()}var he=(0,s.forwardRef)(function({onSend:e,disabled:t=!1,children:n},r){let i=(0,s.useId)(),a=(0,s.useRef)(null),[o,l]=(0,s.useState)(``),[u,f]=(0,s.useState)(!1),[p,m]=(0,s.useState)();(0,s.useImperativeHandle)(r,()=>({focus:()=>a.current?.focus()}),[]);let h=async()=>{if(!(u||t||!o.trim())){f(!0),m(void 0);try{await e(o),l(``)}catch(e){m(F(e))}finally{f(!1),a.current?.focus()}}};return(0,c.jsxs)(`form`,{className:`composer`,"aria-label":`Write a message`,onSubmit:e=>{e.preventDefault(),h()},children:[(0,c.jsx)(`label`,{htmlFor:i,className:`visually-hidden`,children:`Message`}),(0,c.jsx)(`textarea`,{id:i,ref:a,rows:3,value:o,maxLength:32e3,placeholder:`Write a message. Enter sends, Shift+Enter adds a line.`,"aria-describedby":p?`${i}-error`:void 0,disabled:t,onChange:e=>l(e.target.value),onKeyDown:e=>{e.key===`Enter`&&!e.shiftKey&&!e.nativeEvent.isComposing&&(e.preventDefault(),h())}}),(0,c.jsxs)(`div`,{className:`composer-actions`,children:[n,(0,c.jsx)(`button`,{type:`submit`,className:`primary`,disabled:t||u,"aria-busy":u,children:`Send`})]}),(0,c.jsx)(`div`,{id:`${i}-error`,children:(0,c.jsx)(d,{error:p})})]})}),ge=(0,s.lazy)(()=>i(()=>import(`./Markdown-Bmh4WBfk.js`).then(e=>({default:e.Markdown})),__vite__mapDeps([0,1,2])));function _e({text:e,citations:t=0}){let n=(0,s.useDeferredValue)(e);return(0,c.jsx)(s.Suspense,{fallback:(0,c.jsx)(`p`,{className:`message-text`,children:e}),children:(0,c.jsx)(ge,{text:n,citations:t})})}var ve={messages:[],streams:[],awaitingReplyTo:null,synced:0,deleted:!1},ye=e=>Array.from(e);function be(e,t,n){if(t>e.length){if(e.pending.some(e=>e.offset===t&&e.delta.length>=n.length))return e;let r=[...e.pending.filter(e=>e.offset!==t),{offset:t,delta:n}];return{...e,pending:r}}let r=ye(n).slice(e.length-t),i=e;return r.length>0&&(i={...e,text:e.text+r.join(``),length:e.length+r.length}),xe(i)}function xe(e){let t=e;for(;;){let e=t.pending.find(e=>e.offset<=t.length);if(!e)return t;t=be({...t,pending:t.pending.filter(t=>t!==e)},e.offset,e.delta)}}function Se(e,t){return e.position-t.position}function Ce(e,t){if(t.length===0)return e;let n=new Map(e.map(e=>[e.id,e]));for(let e of t)n.set(e.id,e);return[...n.values()].sort(Se)}function we(e,t){let n=Te(e,t),r=Math.max(e.synced,...t.map(e=>e.position));return r===n.synced?n:{...n,synced:r}}function Te(e,t){let n=Ce(e.messages,t),r=new Set(t.map(e=>e.id)),i=e.streams.filter(e=>!r.has(e.id)),a=t.some(t=>t.role===`ASSISTANT`&&t.replyTo!=null&&t.replyTo===e.awaitingReplyTo);return{...e,messages:n,streams:i.length===e.streams.length?e.streams:i,awaitingReplyTo:a?null:e.awaitingReplyTo}}function Ee(e,t){switch(t.type){case`messages`:return we(e,t.messages);case`messageAdded`:return we(e,[t.message]);case`sent`:{let n=Te(e,[t.message]),r=n.messages.some(e=>e.role===`ASSISTANT`&&e.replyTo===t.message.id);return{...n,awaitingReplyTo:r?null:t.message.id}}case`replyDelta`:{if(e.messages.some(e=>e.id===t.messageId))return e;let n=e.streams.findIndex(e=>e.id===t.messageId),r=n>=0?e.streams[n]:{id:t.messageId,text:``,length:0,pending:[]},i=be(r,t.offset,t.delta);if(i===r&&n>=0)return e;let a=[...e.streams];return n>=0?a[n]=i:a.push(i),{...e,streams:a}}case`stopped`:return e.streams.length===0?{...e,awaitingReplyTo:null}:e;case`chatDeleted`:return{...e,deleted:!0,streams:[],awaitingReplyTo:null}}}function De(e,t=0){return Math.max(t,e.synced)}function Oe(e){return e.streams.length>0||e.awaitingReplyTo!==null}var ke=`passage erased (document deleted)`,Ae=e=>`[${e}]`;function je(e){return[...e].sort((e,t)=>e.rank-t.rank)}function Me(e){if(e.erased)return ke;let t=e.title||`Untitled document`;return e.location?`${t} — ${e.location}`:t}function Ne(e){let t=e.length,n=e.filter(e=>e.cited).length;return`Sources: ${t===1?`1 passage`:`${t} passages`} given, ${n} cited`}function Pe(e,t){let n=/^\[(\d{1,3})\](?!\()/.exec(e);if(!n)return null;let r=Number(n[1]);return r>=1&&r<=t?{rank:r,length:n[0].length}:null}var Fe=e=>`#citation-${e}`;function Ie(e){let t=/^#citation-(\d{1,3})$/.exec(e??``);return t?Number(t[1]):null}function Le({citations:e}){return e.length===0?null:(0,c.jsxs)(`div`,{className:`citations`,role:`group`,"aria-label":`Sources`,children:[(0,c.jsx)(`p`,{className:`citations-summary`,children:Ne(e)}),(0,c.jsx)(`ol`,{className:`citation-list`,children:je(e).map(e=>(0,c.jsx)(Re,{citation:e},`${e.rank}-${e.chunkId}`))})]})}function Re({citation:e}){let t=e.erased?`erased`:e.cited?`cited`:`given`,n=(0,c.jsxs)(c.Fragment,{children:[(0,c.jsx)(`span`,{className:`citation-rank`,children:Ae(e.rank)}),` `,(0,c.jsx)(`span`,{className:`citation-heading`,children:Me(e)}),!e.erased&&!e.cited&&(0,c.jsx)(`span`,{className:`citation-note`,children:` (given, not cited)`})]});return(0,c.jsx)(`li`,{className:`citation citation-${t}`,"data-rank":e.rank,children:e.erased||!e.text?(0,c.jsx)(`p`,{className:`citation-line`,children:n}):(0,c.jsxs)(`details`,{children:[(0,c.jsx)(`summary`,{children:n}),(0,c.jsx)(`blockquote`,{className:`citation-text`,children:e.text})]})})}function ze(e,t){let n=e.querySelector(`.citation[data-rank="${t}"]`);if(!n)return;let r=n.querySelector(`details`);r&&(r.open=!0);let i=n.querySelector(`summary`)??n;i===n&&(n.tabIndex=-1),n.scrollIntoView({block:`center`}),i.focus({preventScroll:!0})}var Be=`no documents`;function Ve(e){if(e.tenantCollection)return`the tenant's collection and your own documents`;let t=e.documents.map(e=>e.title);return t.length===0?Be:t.length===1?t[0]:t.length===2?`${t[0]} and ${t[1]}`:`${t[0]}, ${t[1]} and ${t.length-2} more`}var He=e=>e.tenantCollection||e.documents.length>0;function Ue(e,t){let n=new Set(t.map(e=>e.id));return[...t,...e.filter(e=>e.status===`READY`&&!n.has(e.id))]}var We=V(`
  query TenantModels {
    tenant {
      id
      defaultModel
      allowedModels
    }
  }
`),Ge=V(`
  query ChatList($first: Int!, $after: String, $afterPosition: Int) {
    chats(first: $first, after: $after, afterPosition: $afterPosition) {
      nodes {
        id
        title
        status
        model
        createdAt
        lastMessageAt
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);V(`
  fragment MessageFields on Message {
    id
    role
    content
    model
    createdAt
    position
    replyTo
    finishReason
    citations {
      rank
      cited
      erased
      documentId
      chunkId
      title
      location
      text
    }
  }
`);var Ke=V(`
  query ChatView($id: ID!, $afterPosition: Int, $first: Int!, $after: String) {
    chat(id: $id, afterPosition: $afterPosition) {
      id
      title
      model
      status
      ownerId
      position
      messages(first: $first, after: $after) {
        nodes {
          ...MessageFields
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`),qe=V(`
  subscription ChatEvents($chatId: ID!, $afterPosition: Int) {
    chatEvents(chatId: $chatId, afterPosition: $afterPosition) {
      __typename
      ... on MessageAdded {
        message {
          ...MessageFields
        }
      }
      ... on ReplyDelta {
        messageId
        delta
        offset
      }
      ... on ChatDeleted {
        chatId
      }
    }
  }
`),Je=V(`
  mutation StartChat($input: StartChatInput!) {
    startChat(input: $input) {
      chatId
      position
    }
  }
`),Ye=V(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) {
      messageId
      position
      duplicate
      message {
        ...MessageFields
      }
    }
  }
`),Xe=V(`
  mutation RenameChat($input: RenameChatInput!) {
    renameChat(input: $input) {
      chatId
      position
    }
  }
`),Ze=V(`
  mutation ArchiveChat($input: ChatIdInput!) {
    archiveChat(input: $input) {
      chatId
      position
    }
  }
`),Qe=V(`
  mutation DeleteChat($input: ChatIdInput!) {
    deleteChat(input: $input) {
      chatId
      position
    }
  }
`),$e=V(`
  mutation StopGeneration($input: ChatIdInput!) {
    stopGeneration(input: $input) {
      requested
    }
  }
`),et=V(`
  query ChatKnowledge($chatId: ID!, $afterPosition: Int) {
    chatKnowledge(chatId: $chatId, afterPosition: $afterPosition) {
      tenantCollection
      documents {
        id
        title
        collection
        status
      }
    }
  }
`),tt=V(`
  mutation AttachKnowledge($input: AttachKnowledgeInput!) {
    attachKnowledge(input: $input) {
      chatId
      position
    }
  }
`),W=new Map,G=null;function K(e,t){W.set(e,Math.max(t,W.get(e)??0)),G=Math.max(t,G??0)}function nt(e){return W.get(e)??null}function q(){return G}var J=null,Y=null;function rt(e,t,n=[]){J={chatId:e,startedAt:t,before:new Set(n)}}function it(){J=null}function at(e,t,n=performance.now()){if(!J||J.chatId!==e)return null;for(let e of t)if(!J.before.has(e))return Y=Math.round(n-J.startedAt),J=null,Y;return null}function ot(){return Y}var st=(0,s.lazy)(()=>i(()=>import(`./KnowledgePicker-BUT01sqv.js`).then(e=>({default:e.KnowledgePicker})),__vite__mapDeps([3,1,2,4])));function ct({chatId:e,writable:t}){let[n,r]=(0,s.useState)(null),[i,a]=(0,s.useState)(!1),o=(0,s.useRef)(null),l=(0,s.useRef)(0),u=(0,s.useCallback)(async()=>{let t=++l.current;try{let{chatKnowledge:n}=await k(et,{chatId:e,afterPosition:nt(e)});t===l.current&&r(n)}catch{t===l.current&&r(null)}},[e]);if((0,s.useEffect)(()=>{u()},[u]),!n)return null;let d=()=>{a(!1),requestAnimationFrame(()=>o.current?.focus())};return(0,c.jsxs)(c.Fragment,{children:[(0,c.jsxs)(`div`,{className:`knowledge-bar`,children:[(0,c.jsxs)(`p`,{className:`knowledge-summary`,"data-testid":`knowledge`,children:[(0,c.jsx)(`span`,{className:`knowledge-label`,children:`Knowledge:`}),` `,(0,c.jsx)(`span`,{className:He(n)?void 0:`hint`,children:Ve(n)})]}),t&&(0,c.jsx)(`button`,{type:`button`,ref:o,"aria-haspopup":`dialog`,onClick:()=>a(!0),children:`Knowledge`})]}),i&&(0,c.jsx)(s.Suspense,{fallback:null,children:(0,c.jsx)(st,{chatId:e,current:n,onClose:d,onSaved:()=>{u(),d()}})})]})}var lt=e=>Math.min(500*2**(e-1),1e4);function ut(e,t,n,r,i){let[a,o]=(0,s.useState)(!1),c=(0,s.useRef)({afterPosition:n,onGone:i});return c.current={afterPosition:n,onGone:i},(0,s.useEffect)(()=>{if(!t)return;let n=!1,i=!1,a=0,s=0,l,u=()=>{},d={chatId:e,get afterPosition(){let e=c.current.afterPosition();return e>0?e:null}},f=()=>{n||i||!E.user||(a+=1,clearTimeout(l),l=setTimeout(p,lt(a)))};function p(){if(n)return;let e=++s,t=()=>!n&&e===s;u(),u=re(qe,d,{next:({chatEvents:e})=>{if(t())switch(a=0,o(!1),e.__typename){case`MessageAdded`:r({type:`messageAdded`,message:e.message});break;case`ReplyDelta`:r({type:`replyDelta`,messageId:e.messageId,offset:e.offset,delta:e.delta});break;case`ChatDeleted`:i=!0,r({type:`chatDeleted`})}},error:e=>{t()&&(e.code===`NOT_FOUND`||e.code===`FORBIDDEN`?(i=!0,c.current.onGone(e)):e.code===`UNAUTHENTICATED`?E.refresh().catch(()=>null).then(()=>{t()&&(ne(),f())}):f())},complete:()=>{t()&&f()}})}let m=te(e=>{n||o(e===`closed`&&!i)});return p(),()=>{n=!0,clearTimeout(l),m(),u(),o(!1)}},[e,t,r]),{reconnecting:a}}var dt=`New chat`,ft=200,pt=3e3,mt=new Set([`NOT_FOUND`,`BAD_USER_INPUT`,`FORBIDDEN`]);function ht(e){let t=e.trim().split(`
`)[0].replace(/\s+/g,` `);return t.length>60?`${t.slice(0,59).trimEnd()}…`:t||`New chat`}var gt={USER:`You`,ASSISTANT:`Assistant`,SYSTEM:`System`};function _t({chatId:e,focusMessageId:t,onChanged:n}){let r=P(),[i,a]=(0,s.useState)(null),[o,l]=(0,s.useState)(null),[u,p]=(0,s.useState)(!1),[m,h]=(0,s.useReducer)(Ee,ve),[g,_]=(0,s.useState)(ot),[v,y]=(0,s.useState)(null),[b,x]=(0,s.useState)(null),[S,C]=(0,s.useState)(!1),w=(0,s.useRef)(null),T=(0,s.useRef)(m);T.current=m,z(i?.title??(o?`Chat not found`:`Chat`)),(0,s.useEffect)(()=>{let t=!1;return(async()=>{try{let n=null;for(;;){let r=(await k(Ke,{id:e,afterPosition:nt(e),first:ft,after:n})).chat;if(t)return;let{messages:i,...o}=r;if(a(o),h({type:`messages`,messages:i.nodes}),!i.pageInfo.hasNextPage||!i.pageInfo.endCursor)break;n=i.pageInfo.endCursor}p(!0)}catch(e){t||l(F(e))}})(),()=>{t=!0}},[e]);let{reconnecting:E}=ut(e,u,(0,s.useCallback)(()=>De(T.current,i?.position??0),[i?.position]),h,(0,s.useCallback)(e=>l(e),[])),D=i!==null&&r!==null&&i.ownerId===r.id,O=D&&!m.deleted,A=Oe(m);(0,s.useLayoutEffect)(()=>{let t=at(e,[...m.streams.filter(e=>e.length>0).map(e=>e.id),...m.messages.filter(e=>e.role===`ASSISTANT`).map(e=>e.id)]);t!==null&&_(t)},[e,m.streams,m.messages]);let j=(0,s.useRef)(!0);(0,s.useEffect)(()=>{let e=()=>{j.current=window.innerHeight+window.scrollY>=document.documentElement.scrollHeight-120};return window.addEventListener(`scroll`,e,{passive:!0}),()=>window.removeEventListener(`scroll`,e)},[]),(0,s.useLayoutEffect)(()=>{u&&j.current&&!b&&window.scrollTo({top:document.documentElement.scrollHeight})},[u,m.messages,m.streams,b]),(0,s.useEffect)(()=>{if(!u||!t)return;let e=document.getElementById(`message-${t}`);if(!e){C(!0);return}C(!1),e.scrollIntoView({block:`center`}),e.focus({preventScroll:!0}),x(t);let n=setTimeout(()=>x(null),pt);return()=>clearTimeout(n)},[u,t]),(0,s.useEffect)(()=>{u&&O&&!t&&w.current?.focus()},[u,O,t]);let ee=async t=>{if(!i)return;let r=U(),a=T.current;rt(e,performance.now(),[...a.streams.map(e=>e.id),...a.messages.filter(e=>e.role===`ASSISTANT`).map(e=>e.id)]);let o=a.messages.length===0;try{let{sendMessage:i}=await H(()=>k(Ye,{input:{chatId:e,content:t,clientMutationId:r}}));h({type:`sent`,message:i.message}),K(e,i.position),n(i.position)}catch(e){throw it(),e}o&&i.title===`New chat`&&N(ht(t)).catch(()=>null)},M=async()=>{y(null);try{await k($e,{input:{chatId:e}}),h({type:`stopped`})}catch(e){y(F(e))}},N=async t=>{let{renameChat:r}=await k(Xe,{input:{chatId:e,title:t}});K(e,r.position),a(e=>e&&{...e,title:t}),n(r.position)};return o&&mt.has(o.code)?(0,c.jsx)(yt,{}):i?(0,c.jsxs)(`section`,{className:`conversation`,"aria-labelledby":`chat-title`,children:[(0,c.jsx)(bt,{chat:i,owner:D&&!m.deleted,onRename:N,onArchive:async()=>{y(null);try{let{archiveChat:t}=await k(Ze,{input:{chatId:e}});K(e,t.position),a(e=>e&&{...e,status:`ARCHIVED`}),n(t.position)}catch(e){y(F(e))}},onDelete:async()=>{y(null);try{let{deleteChat:t}=await k(Qe,{input:{chatId:e}});K(e,t.position),n(t.position),L(`/chats`)}catch(e){y(F(e))}}}),(0,c.jsx)(ct,{chatId:e,writable:O}),(0,c.jsx)(d,{error:v??o}),E&&(0,c.jsx)(`p`,{className:`live-status`,role:`status`,children:`Reconnecting…`}),m.deleted&&(0,c.jsxs)(`p`,{className:`error`,role:`alert`,children:[`This chat was deleted.`,` `,(0,c.jsx)(`a`,{href:`/chats`,onClick:e=>(e.preventDefault(),L(`/chats`)),children:`Back to your chats`})]}),S&&(0,c.jsx)(`p`,{className:`hint`,role:`status`,children:`The message you searched for is no longer in this chat.`}),(0,c.jsxs)(`div`,{className:`message-list`,role:`log`,"aria-label":`Messages`,"aria-busy":m.streams.length>0,"data-first-token-ms":g??void 0,children:[!u&&(0,c.jsx)(f,{label:`Loading messages…`}),u&&m.messages.length===0&&m.streams.length===0&&(0,c.jsxs)(`p`,{className:`empty`,children:[`No messages yet.`,O?` Write the first one below.`:``]}),m.messages.map(e=>(0,c.jsx)(vt,{message:e,flash:b===e.id},e.id)),m.streams.map(e=>(0,c.jsxs)(`article`,{id:`message-${e.id}`,className:`message assistant`,"aria-label":`Assistant message`,"data-streaming":`true`,children:[(0,c.jsxs)(`header`,{className:`message-meta`,children:[(0,c.jsx)(`span`,{className:`message-author`,children:`Assistant`}),(0,c.jsx)(`span`,{className:`message-model`,children:i.model})]}),e.length>0?(0,c.jsx)(_e,{text:e.text}):(0,c.jsx)(`p`,{className:`typing`,children:`…`})]},e.id)),m.awaitingReplyTo!==null&&m.streams.length===0&&(0,c.jsx)(`p`,{className:`typing hint`,children:`The assistant is replying…`})]}),O&&(0,c.jsx)(he,{ref:w,onSend:ee,disabled:!u,children:A&&(0,c.jsx)(`button`,{type:`button`,onClick:()=>void M(),children:`Stop generating`})}),!D&&i&&(0,c.jsx)(`p`,{className:`hint`,children:`You are reading someone else's chat; only its owner can write in it.`})]}):o?(0,c.jsx)(`section`,{className:`conversation`,children:(0,c.jsx)(d,{error:o})}):(0,c.jsx)(f,{label:`Opening the chat…`})}function vt({message:e,flash:t}){let n=gt[e.role],r=e.citations??[],i=r.reduce((e,t)=>Math.max(e,t.rank),0);return(0,c.jsxs)(`article`,{id:`message-${e.id}`,className:`message ${e.role.toLowerCase()}${t?` flash`:``}`,"aria-label":`${n} message`,tabIndex:-1,onClick:i>0?e=>{let t=Ie((e.target.closest?.(`a.citation-ref`))?.getAttribute(`href`)??null);t!==null&&(e.preventDefault(),ze(e.currentTarget,t))}:void 0,children:[(0,c.jsxs)(`header`,{className:`message-meta`,children:[(0,c.jsx)(`span`,{className:`message-author`,children:n}),e.role===`ASSISTANT`&&e.model&&(0,c.jsx)(`span`,{className:`message-model`,children:e.model}),(0,c.jsx)(`time`,{dateTime:e.createdAt,children:v(e.createdAt)})]}),e.role===`USER`?(0,c.jsx)(`p`,{className:`message-text`,children:e.content}):(0,c.jsx)(_e,{text:e.content,citations:i}),e.role===`ASSISTANT`&&e.finishReason&&e.finishReason!==`stop`&&(0,c.jsxs)(`small`,{className:`finish-reason`,children:[`Finish reason: `,e.finishReason]}),(0,c.jsx)(Le,{citations:r})]})}function yt(){let e=(0,s.useRef)(null);return(0,s.useEffect)(()=>e.current?.focus({preventScroll:!0}),[]),(0,c.jsxs)(`section`,{className:`conversation not-found`,"aria-labelledby":`chat-not-found`,children:[(0,c.jsx)(`h1`,{id:`chat-not-found`,tabIndex:-1,ref:e,children:`Chat not found`}),(0,c.jsx)(`p`,{children:`There is no such chat, or it is not yours to see.`}),(0,c.jsx)(`p`,{children:(0,c.jsx)(`a`,{href:`/chats`,onClick:e=>(e.preventDefault(),L(`/chats`)),children:`Back to your chats`})})]})}function bt({chat:e,owner:t,onRename:n,onArchive:r,onDelete:i}){let[a,o]=(0,s.useState)(!1),[l,u]=(0,s.useState)(e.title),[f,p]=(0,s.useState)(null),[m,h]=(0,s.useState)(!1),g=(0,s.useRef)(null),v=(0,s.useRef)(null),y=e.status===`ARCHIVED`;(0,s.useEffect)(()=>{a&&v.current?.select()},[a]);let b=()=>{o(!1),p(null),requestAnimationFrame(()=>g.current?.focus())},x=async()=>{let e=l.trim();if(e)try{await n(e),b()}catch(e){p(F(e))}};return(0,c.jsxs)(`header`,{className:`chat-header`,children:[a?(0,c.jsxs)(`form`,{className:`rename-form`,"aria-label":`Rename chat`,onSubmit:e=>{e.preventDefault(),x()},onKeyDown:e=>{e.key===`Escape`&&b()},children:[(0,c.jsx)(`label`,{htmlFor:`chat-title-input`,className:`visually-hidden`,children:`Chat title`}),(0,c.jsx)(`input`,{id:`chat-title-input`,ref:v,value:l,maxLength:200,required:!0,onChange:e=>u(e.target.value)}),(0,c.jsx)(`button`,{type:`submit`,className:`primary`,children:`Save`}),(0,c.jsx)(`button`,{type:`button`,onClick:b,children:`Cancel`}),(0,c.jsx)(d,{error:f})]}):(0,c.jsx)(`h1`,{id:`chat-title`,tabIndex:-1,children:e.title}),(0,c.jsxs)(`p`,{className:`chat-facts`,children:[(0,c.jsxs)(`span`,{children:[`Model: `,e.model]}),y&&(0,c.jsx)(`span`,{className:`badge`,children:`Archived`})]}),t&&!a&&(0,c.jsxs)(`div`,{className:`chat-actions`,children:[(0,c.jsx)(`button`,{type:`button`,ref:g,onClick:()=>{u(e.title),o(!0)},children:`Rename chat`}),(0,c.jsx)(`button`,{type:`button`,onClick:()=>void r(),disabled:y,children:`Archive chat`}),(0,c.jsx)(`button`,{type:`button`,className:`danger`,onClick:()=>h(!0),children:`Delete chat`})]}),(0,c.jsx)(_,{open:m,title:`Delete this chat?`,confirmLabel:`Delete`,danger:!0,onCancel:()=>h(!1),onConfirm:()=>{h(!1),i()},children:(0,c.jsxs)(`p`,{children:[`“`,e.title,`” and its messages leave every list and search. This cannot be undone here.`]})})]})}var xt=30,St=`parley.model`;function Ct(){let{path:e,query:t}=R(),n=ce(`/chats/:id`,e)?.id??null,r=P(),i=r!==null&&r.role!==`AUDITOR`,a=Dt(),[o,l,u]=Et(),[f,p]=(0,s.useState)(null),[m,h]=(0,s.useState)(!1),g=async e=>{let t=U(),{startChat:n}=await H(()=>k(Je,{input:{title:e,model:o||null,clientMutationId:t}}));return K(n.chatId,n.position),n},_=async()=>{h(!0),p(null);try{let{chatId:e,position:t}=await g(dt);a.reload(t),L(`/chats/${encodeURIComponent(e)}`)}catch(e){p(F(e))}finally{h(!1)}},v=async e=>{let t=performance.now(),{chatId:n}=await g(ht(e));rt(n,t);try{let t=U(),{sendMessage:r}=await H(()=>k(Ye,{input:{chatId:n,content:e,clientMutationId:t}}));K(n,r.position),a.reload(r.position)}catch(e){throw it(),a.reload(q()),L(`/chats/${encodeURIComponent(n)}`),e}L(`/chats/${encodeURIComponent(n)}`)},y=(0,s.useCallback)(e=>void a.reload(e),[a.reload]);return(0,c.jsxs)(`div`,{className:`chat-layout`,children:[(0,c.jsxs)(`aside`,{className:`chat-sidebar`,"aria-label":`Your chats`,children:[i&&(0,c.jsxs)(`div`,{className:`new-chat`,children:[(0,c.jsx)(`button`,{type:`button`,className:`primary`,onClick:()=>void _(),disabled:m,children:`New chat`}),(0,c.jsx)(Tt,{value:o,onChange:l,models:u}),(0,c.jsx)(d,{error:f})]}),(0,c.jsx)(Ot,{list:a,currentId:n})]}),(0,c.jsx)(`div`,{className:`chat-main`,children:n?(0,c.jsx)(_t,{chatId:n,focusMessageId:t.get(`message`),onChanged:y},n):(0,c.jsx)(wt,{canWrite:i,onSend:v})})]})}function wt({canWrite:e,onSend:t}){z(`Chats`);let n=(0,s.useRef)(null);return(0,s.useEffect)(()=>n.current?.focus({preventScroll:!0}),[]),(0,c.jsxs)(`section`,{className:`conversation`,"aria-labelledby":`draft-title`,children:[(0,c.jsx)(`header`,{className:`chat-header`,children:(0,c.jsx)(`h1`,{id:`draft-title`,tabIndex:-1,ref:n,children:e?`Start a conversation`:`Chats`})}),e?(0,c.jsxs)(c.Fragment,{children:[(0,c.jsx)(`p`,{className:`hint`,children:`Your first message starts a chat with the model chosen beside “New chat”.`}),(0,c.jsx)(he,{onSend:t})]}):(0,c.jsx)(`p`,{className:`empty`,children:`Choose a chat to read it.`})]})}function Tt({value:e,onChange:t,models:n}){let r=(0,s.useId)(),i=n?[...new Set([n.defaultModel,...n.allowedModels])]:[];return(0,c.jsxs)(`div`,{className:`field model-field`,children:[(0,c.jsx)(`label`,{htmlFor:r,children:`Model`}),(0,c.jsxs)(`select`,{id:r,value:e,onChange:e=>t(e.target.value),"aria-describedby":`${r}-hint`,children:[i.length===0&&(0,c.jsx)(`option`,{value:``,children:`Tenant default`}),i.map(e=>(0,c.jsx)(`option`,{value:e,children:e===n?.defaultModel?`${e} (default)`:e},e))]}),(0,c.jsx)(`small`,{id:`${r}-hint`,className:`hint`,children:`For new chats; a chat keeps its model.`})]})}function Et(){let e=ie(We,{}).data?.tenant??null,[t,n]=(0,s.useState)(()=>localStorage.getItem(St)),r=e?new Set([e.defaultModel,...e.allowedModels]):null,i=t&&(!r||r.has(t))?t:e?.defaultModel??``;return[r&&r.size>0?i:``,e=>{n(e),localStorage.setItem(St,e)},e]}function Dt(){let[e,t]=(0,s.useState)([]),[n,r]=(0,s.useState)(!0),[i,a]=(0,s.useState)(null),[o,c]=(0,s.useState)(null),[l,u]=(0,s.useState)(!1),d=(0,s.useRef)(0),f=(0,s.useCallback)(async(e,n)=>{let i=++d.current;r(!0);try{let{chats:r}=await k(Ge,{first:xt,after:e,afterPosition:n});if(i!==d.current)return;t(t=>{if(!e)return r.nodes;let n=new Set(t.map(e=>e.id));return[...t,...r.nodes.filter(e=>!n.has(e.id))]}),c(r.pageInfo.endCursor??null),u(r.pageInfo.hasNextPage),a(null)}catch(e){i===d.current&&a(F(e))}finally{i===d.current&&r(!1)}},[]);(0,s.useEffect)(()=>{f(null,q())},[f]);let p=(0,s.useCallback)((e=null)=>f(null,e??q()),[f]);return{chats:e,loading:n,error:i,hasMore:l,loadMore:(0,s.useCallback)(()=>f(o,null),[f,o]),reload:p}}function Ot({list:e,currentId:t}){let{chats:n,loading:r,error:i,hasMore:a,loadMore:o}=e;return(0,c.jsxs)(`nav`,{className:`chat-list`,"aria-label":`Chats`,children:[(0,c.jsx)(`h2`,{className:`chat-list-title`,children:`Your chats`}),(0,c.jsx)(d,{error:i}),n.length===0&&!r&&!i&&(0,c.jsx)(`p`,{className:`empty`,children:`No chats yet.`}),(0,c.jsx)(`ul`,{children:n.map(e=>(0,c.jsx)(`li`,{children:(0,c.jsxs)(`a`,{href:`/chats/${encodeURIComponent(e.id)}`,"aria-current":e.id===t?`page`:void 0,onClick:t=>{t.metaKey||t.ctrlKey||t.shiftKey||t.button!==0||(t.preventDefault(),L(`/chats/${encodeURIComponent(e.id)}`))},children:[(0,c.jsx)(`span`,{className:`chat-list-name`,children:e.title}),(0,c.jsxs)(`span`,{className:`chat-list-meta`,children:[e.status===`ARCHIVED`&&(0,c.jsx)(`span`,{className:`badge`,children:`Archived`}),(0,c.jsx)(`time`,{dateTime:e.lastMessageAt??e.createdAt,children:v(e.lastMessageAt??e.createdAt)})]})]})},e.id))}),r&&n.length===0&&(0,c.jsx)(f,{label:`Loading chats…`}),a&&(0,c.jsx)(`button`,{type:`button`,onClick:()=>void o(),disabled:r,"aria-busy":r,children:`Load more`})]})}var kt={amp:`&`,lt:`<`,gt:`>`,quot:`"`,apos:`'`};function At(e){return e.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi,(e,t)=>{if(t[0]===`#`){let n=t[1]===`x`||t[1]===`X`?Number.parseInt(t.slice(2),16):Number(t.slice(1));return Number.isInteger(n)&&n>=0&&n<=1114111?String.fromCodePoint(n):e}return kt[t.toLowerCase()]??e})}function jt(e){let t=[],n=!1;for(let r of e.split(/(<em>|<\/em>)/))r===`<em>`?n=!0:r===`</em>`?n=!1:r&&t.push({text:At(r),match:n});return t}function X(e,t,n={}){let r=new URLSearchParams({...e===`documents`?{in:`documents`}:{},...t?{q:t}:{},...n}).toString();return r?`/search?${r}`:`/search`}var Mt=e=>e===`documents`?`documents`:`messages`,Nt=V(`
  query SearchKnowledge($query: String!, $first: Int!, $mode: RetrievalMode!) {
    searchKnowledge(query: $query, first: $first, mode: $mode) {
      documentId
      chunkId
      title
      location
      text
    }
  }
`),Pt=10,Z=[{mode:`HYBRID`,param:`hybrid`,label:`Words and meaning`},{mode:`BM25`,param:`words`,label:`Words`},{mode:`VECTOR`,param:`meaning`,label:`Meaning`}];function Ft(e){return Z.find(t=>t.param===e)?.mode??`HYBRID`}function It(e){return e===`HYBRID`?{}:{mode:Z.find(t=>t.mode===e)?.param??`hybrid`}}function Lt({q:e,mode:t}){let n=Ft(t),[r,i]=(0,s.useState)(e),[a,o]=(0,s.useState)(n),[l,u]=(0,s.useState)(null),[m,h]=(0,s.useState)(!1),[g,_]=(0,s.useState)(null),v=(0,s.useId)(),y=(0,s.useId)();(0,s.useEffect)(()=>i(e),[e]),(0,s.useEffect)(()=>o(n),[n]),(0,s.useEffect)(()=>{if(u(null),_(null),!e)return;let t=!1;return h(!0),k(Nt,{query:e,first:Pt,mode:n}).then(({searchKnowledge:e})=>!t&&u(e)).catch(e=>!t&&_(F(e))).finally(()=>!t&&h(!1)),()=>{t=!0}},[e,n]);let b=(e,t)=>L(X(`documents`,e,It(t)));return(0,c.jsxs)(c.Fragment,{children:[(0,c.jsxs)(`form`,{role:`search`,className:`search-form`,onSubmit:e=>{e.preventDefault(),b(r.trim(),a)},children:[(0,c.jsx)(`label`,{htmlFor:v,children:`Search documents`}),(0,c.jsxs)(`div`,{className:`search-row`,children:[(0,c.jsx)(`input`,{id:v,type:`text`,inputMode:`search`,enterKeyHint:`search`,value:r,onChange:e=>i(e.target.value),placeholder:`A question or some words`,autoComplete:`off`}),(0,c.jsx)(`label`,{htmlFor:y,className:`visually-hidden`,children:`Match by`}),(0,c.jsx)(`select`,{id:y,className:`search-mode`,value:a,onChange:t=>{let n=t.target.value;o(n),e&&b(e,n)},children:Z.map(e=>(0,c.jsx)(`option`,{value:e.mode,children:e.label},e.mode))}),(0,c.jsx)(`button`,{type:`submit`,className:`primary`,children:`Search`})]})]}),(0,c.jsx)(d,{error:g}),e&&l!==null&&l.length===0&&(0,c.jsxs)(p,{children:[`No passage of your documents matches “`,e,`”.`]}),l&&l.length>0&&(0,c.jsxs)(c.Fragment,{children:[(0,c.jsx)(`h2`,{className:`visually-hidden`,children:`Passages`}),(0,c.jsx)(`ol`,{className:`search-hits passage-hits`,children:l.map(e=>(0,c.jsx)(`li`,{children:(0,c.jsxs)(`article`,{className:`passage-hit`,"aria-label":e.title,children:[(0,c.jsx)(`span`,{className:`search-hit-title passage-title`,children:e.title}),e.location&&(0,c.jsx)(`span`,{className:`search-hit-meta`,children:e.location}),(0,c.jsx)(`p`,{className:`passage-text`,children:e.text})]})},e.chunkId))})]}),m&&(0,c.jsx)(f,{label:`Searching…`})]})}var Rt=V(`
  query SearchMessages($query: String!, $first: Int!, $after: String) {
    searchMessages(query: $query, first: $first, after: $after) {
      nodes {
        kind
        chatId
        chatTitle
        messageId
        role
        highlights
        content
        createdAt
        position
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`),zt=20,Bt={USER:`You`,ASSISTANT:`Assistant`,SYSTEM:`System`};function Vt(e){let t=`/chats/${encodeURIComponent(e.chatId)}`;return e.messageId?`${t}?message=${encodeURIComponent(e.messageId)}`:t}function Ht(){let{query:e}=R(),t=(e.get(`q`)??``).trim(),n=Mt(e.get(`in`));return z(t?`Search: ${t}`:`Search`),(0,c.jsxs)(m,{title:`Search`,children:[(0,c.jsx)(`nav`,{"aria-label":`Search in`,children:(0,c.jsx)(`ul`,{className:`tabs`,children:[`messages`,`documents`].map(e=>(0,c.jsx)(`li`,{children:(0,c.jsx)(`a`,{href:X(e,t),"aria-current":e===n?`page`:void 0,onClick:n=>{n.metaKey||n.ctrlKey||n.shiftKey||n.button!==0||(n.preventDefault(),L(X(e,t)))},children:e===`messages`?`Messages`:`Documents`})},e))})}),n===`documents`?(0,c.jsx)(Lt,{q:t,mode:e.get(`mode`)}):(0,c.jsx)(Ut,{q:t})]})}function Ut({q:e}){let[t,n]=(0,s.useState)(e),[r,i]=(0,s.useState)([]),[a,o]=(0,s.useState)(null),[l,u]=(0,s.useState)(!1),[m,h]=(0,s.useState)(!1),[g,_]=(0,s.useState)(null),v=(0,s.useId)();(0,s.useEffect)(()=>n(e),[e]),(0,s.useEffect)(()=>{if(i([]),o(null),u(!1),_(null),!e)return;let t=!1;return h(!0),k(Rt,{query:e,first:zt,after:null}).then(({searchMessages:e})=>{t||(i(e.nodes),o(e.pageInfo.endCursor??null),u(e.pageInfo.hasNextPage))}).catch(e=>!t&&_(F(e))).finally(()=>!t&&h(!1)),()=>{t=!0}},[e]);let y=async()=>{h(!0);try{let{searchMessages:t}=await k(Rt,{query:e,first:zt,after:a});i(e=>[...e,...t.nodes]),o(t.pageInfo.endCursor??null),u(t.pageInfo.hasNextPage)}catch(e){_(F(e))}finally{h(!1)}};return(0,c.jsxs)(c.Fragment,{children:[(0,c.jsxs)(`form`,{role:`search`,className:`search-form`,onSubmit:e=>{e.preventDefault(),L(X(`messages`,t.trim()))},children:[(0,c.jsx)(`label`,{htmlFor:v,children:`Search messages`}),(0,c.jsxs)(`div`,{className:`search-row`,children:[(0,c.jsx)(`input`,{id:v,type:`text`,inputMode:`search`,enterKeyHint:`search`,value:t,onChange:e=>n(e.target.value),placeholder:`Words, "an exact phrase", -excluded`,autoComplete:`off`}),(0,c.jsx)(`button`,{type:`submit`,className:`primary`,children:`Search`})]})]}),(0,c.jsx)(d,{error:g}),e&&!m&&!g&&r.length===0&&(0,c.jsxs)(p,{children:[`Nothing matches “`,e,`”.`]}),r.length>0&&(0,c.jsxs)(c.Fragment,{children:[(0,c.jsx)(`h2`,{className:`visually-hidden`,children:`Results`}),(0,c.jsx)(`ol`,{className:`search-hits`,children:r.map(e=>(0,c.jsx)(`li`,{children:(0,c.jsx)(Wt,{hit:e})},`${e.kind}-${e.messageId??e.chatId}-${e.position}`))})]}),m&&(0,c.jsx)(f,{label:`Searching…`}),l&&!m&&(0,c.jsx)(`button`,{type:`button`,onClick:()=>void y(),children:`More results`})]})}function Wt({hit:e}){let t=Vt(e),n=e.kind===`CHAT_TITLE`?`Chat title`:Bt[e.role??``]??`Message`;return(0,c.jsxs)(`a`,{className:`search-hit`,href:t,onClick:e=>{e.metaKey||e.ctrlKey||e.shiftKey||e.button!==0||(e.preventDefault(),L(t))},children:[(0,c.jsx)(`span`,{className:`search-hit-title`,children:e.chatTitle}),(0,c.jsxs)(`span`,{className:`search-hit-meta`,children:[(0,c.jsx)(`span`,{children:n}),(0,c.jsx)(`time`,{dateTime:e.createdAt,children:v(e.createdAt)})]}),e.highlights.length>0?e.highlights.map((e,t)=>(0,c.jsx)(`span`,{className:`search-hit-fragment`,children:jt(e).map((e,t)=>e.match?(0,c.jsx)(`em`,{children:e.text},t):e.text)},t)):(0,c.jsx)(`span`,{className:`search-hit-fragment`,children:e.content.slice(0,240)})]})}var Q=`parley.tenant`,Gt=`parley.oidc`;function Kt(e){return btoa(String.fromCharCode(...e)).replace(/\+/g,`-`).replace(/\//g,`_`).replace(/=+$/,``)}async function qt(e){let t=Kt(crypto.getRandomValues(new Uint8Array(32))),n=Kt(crypto.getRandomValues(new Uint8Array(16))),r=new Uint8Array(await crypto.subtle.digest(`SHA-256`,new TextEncoder().encode(t))),i=new URLSearchParams({redirect_uri:`${location.origin}/signed-in`,state:n,code_challenge:Kt(r),code_challenge_method:`S256`}),a=`/auth/oidc/${encodeURIComponent(e)}/login?${i}`,o=await fetch(a,{headers:{Accept:`application/json`},credentials:`same-origin`}),s=await o.json().catch(()=>({}));if(!o.ok||typeof s?.authorizationUrl!=`string`){let e=s?.error??{};throw new y(e.code??`INTERNAL`,e.message??`the server answered ${o.status}`,e.retryAfterSeconds)}sessionStorage.setItem(Gt,JSON.stringify({tenant:e,verifier:t,state:n,from:location.pathname})),location.assign(s.authorizationUrl)}function Jt(){z(`Sign in`);let[e,t]=(0,s.useState)(()=>localStorage.getItem(Q)??``),[n,r]=(0,s.useState)(``),[i,a]=(0,s.useState)(``),[o,l]=(0,s.useState)(null),[u,f]=(0,s.useState)(!1),[p,m]=(0,s.useState)(null),[_,v]=(0,s.useState)(!1),b=(0,s.useRef)(null);(0,s.useEffect)(()=>b.current?.focus(),[]);let x=async()=>{f(!0),l(null);try{await E.signIn(e.trim(),n.trim(),i),localStorage.setItem(Q,e.trim()),location.pathname===`/`&&L(`/chats`,{replace:!0})}catch(e){l(e instanceof y?e:new y(`NETWORK`,String(e)))}finally{f(!1)}},S=async()=>{v(!0),m(null);try{await qt(e.trim())}catch(e){m(e instanceof y?e:new y(`NETWORK`,String(e)))}finally{v(!1)}};return(0,c.jsx)(`main`,{id:`main`,className:`sign-in`,children:(0,c.jsxs)(`div`,{className:`card`,children:[(0,c.jsx)(`h1`,{tabIndex:-1,ref:b,children:`Sign in to Parley`}),(0,c.jsxs)(g,{onSubmit:x,label:`Sign in`,children:[(0,c.jsx)(h,{label:`Tenant`,hint:`Your organisation's handle, e.g. acme`,children:n=>(0,c.jsx)(`input`,{...n,name:`tenant`,autoComplete:`organization`,required:!0,value:e,onChange:e=>t(e.target.value)})}),(0,c.jsx)(h,{label:`E-mail`,children:e=>(0,c.jsx)(`input`,{...e,name:`email`,type:`email`,autoComplete:`username`,required:!0,value:n,onChange:e=>r(e.target.value)})}),(0,c.jsx)(h,{label:`Password`,children:e=>(0,c.jsx)(`input`,{...e,name:`password`,type:`password`,autoComplete:`current-password`,required:!0,value:i,onChange:e=>a(e.target.value)})}),(0,c.jsx)(d,{error:o,messages:{UNAUTHENTICATED:`Wrong tenant, e-mail or password.`}}),o?.retryAfterSeconds?(0,c.jsxs)(`p`,{className:`hint`,children:[`Try again in `,Math.ceil(o.retryAfterSeconds/60),` min.`]}):null,(0,c.jsx)(`button`,{type:`submit`,className:`primary`,disabled:u,children:u?`Signing in…`:`Sign in`})]}),(0,c.jsx)(`div`,{className:`divider`,role:`separator`}),(0,c.jsx)(`button`,{type:`button`,disabled:!e.trim()||_,onClick:()=>void S(),"aria-describedby":`oidc-hint`,children:`Sign in with your organisation's identity provider`}),(0,c.jsx)(`p`,{id:`oidc-hint`,className:`hint`,children:`Enter your tenant first. Works when your administrator has set up single sign-on.`}),(0,c.jsx)(d,{error:p,messages:{NOT_FOUND:`This tenant does not sign in through an identity provider. Check the tenant, or sign in with your e-mail and password.`}})]})})}function Yt(){z(`Signing in`);let{query:e}=R(),[t,n]=(0,s.useState)(null),r=(0,s.useRef)(!1);return(0,s.useEffect)(()=>{if(r.current)return;r.current=!0;let t=JSON.parse(sessionStorage.getItem(Gt)??`null`);sessionStorage.removeItem(Gt);let i=e.get(`code`);!t||!i||e.get(`state`)!==t.state?n(new y(`UNAUTHENTICATED`,`This sign-in link is not for this browser, or was used already.`)):E.finishOidc(t.tenant,i,t.verifier).then(()=>{localStorage.setItem(Q,t.tenant),L(`/chats`,{replace:!0})}).catch(e=>n(e instanceof y?e:new y(`NETWORK`,String(e))))},[e]),(0,c.jsx)(`main`,{id:`main`,className:`sign-in`,children:(0,c.jsxs)(`div`,{className:`card`,children:[(0,c.jsx)(`h1`,{children:`Signing in`}),t?(0,c.jsxs)(c.Fragment,{children:[(0,c.jsx)(d,{error:t}),(0,c.jsx)(`a`,{href:`/`,children:`Back to sign-in`})]}):(0,c.jsx)(f,{label:`Finishing your sign-in…`})]})})}var Xt=e=>e.role===`TENANT_ADMIN`||e.role===`PLATFORM_ADMIN`,Zt=e=>e.role===`AUDITOR`||e.role===`TENANT_ADMIN`||e.role===`PLATFORM_ADMIN`,Qt=e=>e.role===`PLATFORM_ADMIN`,$t=V(`
  query Me {
    me {
      id
      tenantId
      email
      displayName
      role
      active
    }
  }
`),en=1e4;function tn(e){let t=e!==null;(0,s.useEffect)(()=>{if(!t)return;let e=async()=>{try{let{me:e}=await k($t);E.update({role:e.role,displayName:e.displayName,email:e.email})}catch{}},n=setInterval(e,en);return window.addEventListener(`focus`,e),()=>{clearInterval(n),window.removeEventListener(`focus`,e)}},[t])}var nn=(0,s.lazy)(()=>i(()=>import(`./AdminPage-BPthK5pF.js`).then(e=>({default:e.AdminPage})),__vite__mapDeps([5,1,2,6]))),rn=(0,s.lazy)(()=>i(()=>import(`./DocumentsPage-jFV9P92T.js`).then(e=>({default:e.DocumentsPage})),__vite__mapDeps([7,1,2,4]))),an=(0,s.lazy)(()=>i(()=>import(`./TenantsPage-BWXNnOz0.js`).then(e=>({default:e.TenantsPage})),__vite__mapDeps([8,1,2,6])));function on(){let e=P(),[t,n]=(0,s.useState)(!0),{path:r}=R();if((0,s.useEffect)(()=>{E.resume().catch(()=>null).finally(()=>n(!1))},[]),(0,s.useEffect)(()=>{e||ne()},[e]),tn(e),t)return(0,c.jsx)(f,{label:`Opening Parley…`});if(r===`/signed-in`)return(0,c.jsx)(Yt,{});if(!e)return(0,c.jsx)(Jt,{});let i;return i=r===`/`||r===`/chats`||r.startsWith(`/chats/`)?(0,c.jsx)(Ct,{}):r===`/search`?(0,c.jsx)(Ht,{}):r===`/documents`?(0,c.jsx)(rn,{}):r===`/account`?(0,c.jsx)(pe,{}):r.startsWith(`/admin`)&&(Xt(e)||Zt(e))?(0,c.jsx)(nn,{}):r.startsWith(`/platform`)&&Qt(e)?(0,c.jsx)(an,{}):(0,c.jsx)(sn,{}),(0,c.jsxs)(`div`,{className:`shell`,children:[(0,c.jsx)(`a`,{className:`skip-link`,href:`#main`,children:`Skip to content`}),(0,c.jsxs)(`header`,{className:`topbar`,children:[(0,c.jsx)(`a`,{className:`brand`,href:`/chats`,onClick:e=>{e.preventDefault(),L(`/chats`)},children:`Parley`}),(0,c.jsx)(`nav`,{"aria-label":`Main`,children:(0,c.jsxs)(`ul`,{children:[(0,c.jsx)($,{to:`/chats`,current:r===`/`||r.startsWith(`/chats`),children:`Chats`}),(0,c.jsx)($,{to:`/search`,current:r===`/search`,children:`Search`}),(0,c.jsx)($,{to:`/documents`,current:r===`/documents`,children:`Documents`}),(Xt(e)||Zt(e))&&(0,c.jsx)($,{to:`/admin`,current:r.startsWith(`/admin`),children:`Admin`}),Qt(e)&&(0,c.jsx)($,{to:`/platform/tenants`,current:r.startsWith(`/platform`),children:`Tenants`}),(0,c.jsx)($,{to:`/account`,current:r===`/account`,children:`Account`})]})}),(0,c.jsxs)(`div`,{className:`whoami`,"data-testid":`whoami`,children:[(0,c.jsx)(`span`,{children:e.displayName||e.email}),(0,c.jsx)(`span`,{className:`role-badge`,"data-testid":`role`,children:e.role.replace(`_`,` `).toLowerCase()}),(0,c.jsx)(`button`,{type:`button`,className:`link`,onClick:()=>void E.signOut(),children:`Sign out`})]})]}),(0,c.jsx)(`main`,{id:`main`,children:(0,c.jsx)(s.Suspense,{fallback:(0,c.jsx)(f,{}),children:i})})]})}function $({to:e,current:t,children:n}){return(0,c.jsx)(`li`,{children:(0,c.jsx)(`a`,{href:e,"aria-current":t?`page`:void 0,onClick:t=>{t.metaKey||t.ctrlKey||t.shiftKey||t.button!==0||(t.preventDefault(),L(e))},children:n})})}function sn(){return(0,c.jsxs)(`section`,{className:`page`,children:[(0,c.jsx)(`h1`,{children:`Not found`}),(0,c.jsx)(`p`,{children:`There is nothing here, or you may not see it.`})]})}var cn=document.getElementById(`root`);cn&&(0,o.createRoot)(cn).render((0,c.jsx)(s.StrictMode,{children:(0,c.jsx)(on,{})}));export{g as C,v as D,u as E,h as S,m as T,k as _,Ue as a,p as b,U as c,R as d,z as f,P as g,ie as h,tt as i,V as l,ae as m,Qt as n,Fe as o,F as p,K as r,Pe as s,Xt as t,L as u,E as v,f as w,d as x,_ as y};